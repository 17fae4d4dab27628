// Endpoint specs ('POST /prospects/{id}/enrichment'): N8N webhook paths (/webhook/…) go to
// the N8N base URL, every other path to the API base URL (as orchestrator/config/endpoints.py).
import { fail } from 'k6';

export function endpoint(spec, apiBase, n8nBase) {
  const match = /^([A-Z]+) (\/\S*)$/.exec(String(spec).trim());
  if (!match) {
    fail(`endpoint ${spec} is not 'METHOD /path'`);
  }
  const [, method, path] = match;
  const n8n = path.startsWith('/webhook/');
  const base = (n8n ? n8nBase : apiBase).replace(/\/+$/, '');
  return {
    method,
    path,
    n8n,
    url: (id) => base + path.replace('{id}', encodeURIComponent(String(id))),
  };
}
