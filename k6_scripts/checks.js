// Shared checks. Check names carry the endpoint name, so the report lists them per endpoint.
import { check } from 'k6';

// Checks a JSON response: status among `statuses`, and `field` present in the body.
export function checkJson(res, name, { statuses = [200], field = null } = {}) {
  const checks = {};
  checks[`${name}: status ${statuses.join('/')}`] = (r) => statuses.includes(r.status);
  if (field) {
    checks[`${name}: has ${field}`] = (r) => {
      try {
        return r.json(field) !== undefined && r.json(field) !== null;
      } catch (e) {
        return false;
      }
    };
  }
  return check(res, checks);
}
