// Auth headers for the target. Secret values come from __ENV at run time; they are never
// rendered into the script.
import { fail } from 'k6';

// mode: 'none' | 'api-key' | 'bearer'; secretVar: the __ENV name holding the key or token.
export function authHeaders(mode, { headerName = 'X-API-Key', secretVar = 'API_KEY' } = {}) {
  if (!mode || mode === 'none') {
    return {};
  }
  const secret = __ENV[secretVar];
  if (!secret) {
    fail(`auth mode ${mode} needs the secret ${secretVar} in the environment`);
  }
  if (mode === 'api-key') {
    return { [headerName]: secret };
  }
  if (mode === 'bearer') {
    return { Authorization: `Bearer ${secret}` };
  }
  fail(`unknown auth mode ${mode}; use none, api-key or bearer`);
  return {};
}
