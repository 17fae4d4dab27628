// N8N webhook URLs. orch derives the path from the workflow export by N8N's own rules
// (orchestrator/target/n8n.py, after n8n's NodeHelpers.getNodeWebhookUrl) and writes it into
// the script as data; route parameters (`:name`, or `{name}` in an override) are filled here,
// per request, URL-encoded.
function isParameter(segment) {
  return segment.startsWith(':') || (segment.length > 2 && segment.startsWith('{') && segment.endsWith('}'));
}

export function webhookUrl(base, path, value) {
  const filled = String(path)
    .split('/')
    .map((segment) => (isParameter(segment) ? encodeURIComponent(String(value)) : segment))
    .join('/');
  return String(base).replace(/\/+$/, '') + filled;
}
