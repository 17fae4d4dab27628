// Shared HTTP helpers: every request carries a stable `name` tag, so per-endpoint figures
// group by endpoint (not by the unique URL of each request).
import http from 'k6/http';

export function postJson(url, body, { name, headers = {}, tags = {} } = {}) {
  return http.post(url, JSON.stringify(body), {
    headers: { 'Content-Type': 'application/json', ...headers },
    tags: { name, ...tags },
  });
}

export function getJson(url, { name, headers = {}, tags = {} } = {}) {
  return http.get(url, { headers, tags: { name, ...tags } });
}
