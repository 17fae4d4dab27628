// Per-VU test users: VU n takes user (n - 1) mod count, so each VU has its own user while
// there are enough of them and VUs share round-robin when there are not.

// The users orch hands to k6 in ORCH_TEST_USERS (JSON, read at init; passwords never logged).
export function testUsers() {
  return userList(JSON.parse(__ENV.ORCH_TEST_USERS || '[]'));
}

// The users from a parsed users file: an array, or an object with a `users` array.
export function userList(data) {
  const list = Array.isArray(data) ? data : (data && data.users) || [];
  return list.filter((u) => u && (u.email || u.id));
}

// The current VU's user, or null when no users are configured.
export function userFor(users, vu) {
  return users.length ? users[(vu - 1) % users.length] : null;
}

// Headers naming the user (never its password or token).
export function userHeaders(user) {
  return user ? { 'X-Test-User': String(user.email || user.id) } : {};
}
