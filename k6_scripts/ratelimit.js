// Rate-limit handling shared by the scenarios: count 429s, honour Retry-After, pace VUs.
//
// `rate_limited` is a Rate: it gets `true` for every 429 and `false` for every other
// response sent through `withRetry`, so the summary shows the count (`passes`) and the
// share (`rate`), and a threshold such as `rate_limited: ["rate<0.05"]` caps the share.
// Retried requests carry the tag `retry=true` (first attempts `retry=false`).
import { sleep } from 'k6';
import { Rate } from 'k6/metrics';

export const rateLimited = new Rate('rate_limited');

// Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), else null.
export function retryAfterSeconds(res) {
  const value = res.headers['Retry-After'] || res.headers['retry-after'];
  if (value === undefined || value === null || value === '') {
    return null;
  }
  const seconds = Number(value);
  if (Number.isFinite(seconds)) {
    return Math.max(0, seconds);
  }
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

// Sends a request with `send(tags)` and retries it while the answer is 429.
// Waits Retry-After when given, else `baseS * 2^attempt`; every wait is capped at `maxS`
// and stretched by up to `jitter` (a fraction) so VUs do not retry in lockstep.
export function withRetry(send, { name, maxRetries = 3, baseS = 1, maxS = 30, jitter = 0.1 } = {}) {
  for (let attempt = 0; ; attempt++) {
    const res = send({ retry: attempt > 0 ? 'true' : 'false' });
    const limited = res.status === 429;
    rateLimited.add(limited, { name });
    if (!limited || attempt >= maxRetries) {
      return res;
    }
    const hinted = retryAfterSeconds(res);
    const wait = Math.min(maxS, hinted !== null ? hinted : baseS * 2 ** attempt);
    sleep(wait * (1 + jitter * Math.random()));
  }
}

// Keeps an iteration at least `minSeconds` long (per-VU pacing for VU-based executors).
export function pace(startedMs, minSeconds) {
  if (!minSeconds) {
    return;
  }
  const left = minSeconds - (Date.now() - startedMs) / 1000;
  if (left > 0) {
    sleep(left);
  }
}
