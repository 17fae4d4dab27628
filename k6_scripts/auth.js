// Auth headers for the target. Secret values come from __ENV at run time; they are never
// rendered into the script.
import { fail } from 'k6';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

const JWT_LIFETIME_S = 24 * 3600;

// An HS256 JWT signed with `secret`, as N8N's Webhook node checks under JWT Auth with a
// passphrase credential (algorithm HS256).
function hs256Jwt(secret) {
  const now = Math.floor(Date.now() / 1000);
  const part = (data) => encoding.b64encode(JSON.stringify(data), 'rawurl');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: 'orch-loadtest', iat: now, exp: now + JWT_LIFETIME_S })}`;
  return `${unsigned}.${crypto.hmac('sha256', secret, unsigned, 'base64rawurl')}`;
}

// mode: 'none' | 'api-key' | 'bearer' | 'basic' | 'jwt'; secretVar: the __ENV name holding
// the key, the token (bearer), 'user:password' (basic) or the JWT passphrase (jwt).
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
  if (mode === 'basic') {
    return { Authorization: `Basic ${encoding.b64encode(secret)}` };
  }
  if (mode === 'jwt') {
    return { Authorization: `Bearer ${hs256Jwt(secret)}` };
  }
  fail(`unknown auth mode ${mode}; use none, api-key, bearer, basic or jwt`);
  return {};
}
