// Shared HTTP helpers. Every request of a scenario goes through `request` (postJson and
// getJson too): it carries a stable `name` tag, so per-endpoint figures group by endpoint
// (not by the unique URL of each request), and it applies orch's production-N8N rule.
import http from 'k6/http';
import exec from 'k6/execution';

// When a staging environment uses the production N8N with test workflows, orch hands the
// rule over in ORCH_EGRESS_RULE: {host, paths}. Requests to that host may use the declared
// webhook paths only, and never follow a redirect. (k6's blacklistIPs still blocks every
// address outside the environment's allow-list.)
const RULE = __ENV.ORCH_EGRESS_RULE ? JSON.parse(__ENV.ORCH_EGRESS_RULE) : null;
const PATHS = RULE ? RULE.paths.map((pattern) => new RegExp(`^${pattern}$`)) : [];
const URL_PARTS = /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)(?::\d*)?([^?#]*)/i;

function cleanPath(path) {
  const raw = path || '/';
  if (/%2f|%5c|%2e|\\|\/\//i.test(raw)) return null;
  if (raw.split('/').some((part) => part === '.' || part === '..')) return null;
  return raw;
}

// The URL itself, or an abort of the whole test when it leaves the production-N8N rule.
export function checkedUrl(url) {
  if (!RULE) return url;
  const match = URL_PARTS.exec(String(url));
  const host = match ? decodeURIComponent(match[1]).toLowerCase().replace(/\.+$/, '') : '';
  if (host !== RULE.host) return url;
  const path = cleanPath(match[2]);
  if (path === null || !PATHS.some((re) => re.test(path))) {
    exec.test.abort(`orch egress: refused ${host}${match[2]}: the production N8N is reachable only on the test workflows' webhook paths`);
  }
  return url;
}

function sharedHost(url) {
  if (!RULE) return false;
  const match = URL_PARTS.exec(String(url));
  return Boolean(match) && decodeURIComponent(match[1]).toLowerCase().replace(/\.+$/, '') === RULE.host;
}

export function request(method, url, body, params = {}) {
  const checked = checkedUrl(url);
  const options = sharedHost(checked) ? { ...params, redirects: 0 } : params;
  return http.request(method, checked, body, options);
}

export function postJson(url, body, { name, headers = {}, tags = {} } = {}) {
  return request('POST', url, JSON.stringify(body), {
    headers: { 'Content-Type': 'application/json', ...headers },
    tags: { name, ...tags },
  });
}

export function getJson(url, { name, headers = {}, tags = {} } = {}) {
  return request('GET', url, null, { headers, tags: { name, ...tags } });
}
