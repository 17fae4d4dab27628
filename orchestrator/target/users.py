"""Test users for load tests: creation, one per VU, and clean-up of them and their data.

Users are named ``loadtest-user-{n}@{domain}`` and the domain must be a test domain (its
first label is ``test``, or its top-level domain is ``test``, ``example``, ``invalid`` or
``localhost``). orch refuses to touch any other account, even when asked by id.

Where users live:
- a ``local`` environment keeps them in the embedded PostgreSQL, in ``auth.users`` (a
  subset of Supabase Auth's table, created on first use);
- other environments use the Supabase Auth admin API (``/auth/v1/admin/users``) with the
  service-role key.

Credentials go to ``tests/load/data/test-users.json`` (git-ignored, mode 0600), keyed by
environment. Clean-up deletes each user's rows in ``ai_conversation_log``, ``meetings``,
``prospects`` and ``campaigns`` (in that order) in one transaction per user, then the user.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from orchestrator.config import EgressPolicy, is_test_domain
from orchestrator.core import ConfigError, DatabaseError, RefusedError, SetupError
from orchestrator.db import connect

USERS_FILE = Path("tests/load/data/test-users.json")
DEFAULT_DOMAIN = "test.sales-machine.com"
# Child tables first: meetings and conversation rows point at prospects, prospects at campaigns.
OWNED_TABLES = ("ai_conversation_log", "meetings", "prospects", "campaigns")
_EMAIL = re.compile(r"^loadtest-user-(\d+)@([a-z0-9.-]+)$")


def check_domain(domain: str) -> None:
    """Refuse a user domain that is not a test domain."""
    if not is_test_domain(domain):
        raise ConfigError(
            f"test user domain {domain!r} is not a test domain; use one whose first label is "
            f"'test' (e.g. {DEFAULT_DOMAIN}) or that ends in .test, .example or .invalid"
        )


def test_email(index: int, domain: str) -> str:
    return f"loadtest-user-{index}@{domain}"


def is_test_account(email: str, domain: str) -> bool:
    """Whether an address follows the test naming pattern in the given test domain."""
    match = _EMAIL.match(email.lower())
    return match is not None and match.group(2) == domain.lower() and is_test_domain(domain)


@dataclass
class StoredUser:
    """A user as the auth store knows it."""

    id: str
    email: str
    last_sign_in_at: str | None = None


class UserStore(Protocol):
    """Where accounts live: the embedded auth table or Supabase Auth."""

    def list_users(self) -> list[StoredUser]: ...

    def create(self, email: str, password: str, metadata: dict[str, Any]) -> StoredUser: ...

    def set_password(self, user: StoredUser, password: str) -> None: ...

    def delete(self, user: StoredUser) -> None: ...


class LocalAuthStore:
    """Users in the embedded PostgreSQL's ``auth.users`` (created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ensure_table()

    def _connect(self) -> Any:
        return connect(self.url, autocommit=True)

    def _ensure_table(self) -> None:
        with self._connect() as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS auth")
            conn.execute(
                """CREATE TABLE IF NOT EXISTS auth.users (
                    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                    email text UNIQUE NOT NULL,
                    encrypted_password text NOT NULL,
                    raw_user_meta_data jsonb NOT NULL DEFAULT '{}',
                    created_at timestamptz NOT NULL DEFAULT now(),
                    last_sign_in_at timestamptz
                )"""
            )

    def list_users(self) -> list[StoredUser]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id::text, email, last_sign_in_at::text FROM auth.users ORDER BY email"
            ).fetchall()
        return [StoredUser(*row) for row in rows]

    def create(self, email: str, password: str, metadata: dict[str, Any]) -> StoredUser:
        with self._connect() as conn:
            row = conn.execute(
                "INSERT INTO auth.users (email, encrypted_password, raw_user_meta_data) "
                "VALUES (%s, %s, %s) RETURNING id::text",
                (email, _hash_password(password), json.dumps(metadata)),
            ).fetchone()
        return StoredUser(id=row[0], email=email)

    def set_password(self, user: StoredUser, password: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE auth.users SET encrypted_password = %s WHERE id = %s",
                (_hash_password(password), user.id),
            )

    def delete(self, user: StoredUser) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM auth.users WHERE id = %s", (user.id,))


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


class SupabaseAdminStore:
    """Users through the Supabase Auth admin API, with the service-role key."""

    def __init__(self, supabase_url: str, service_role_key: str, policy: EgressPolicy) -> None:
        self.base = supabase_url.rstrip("/") + "/auth/v1/admin/users"
        self._key = service_role_key
        self._policy = policy

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        """One admin API call through orch's checked client (no redirect is followed, so
        the key never leaves the allow-list)."""
        import httpx

        from orchestrator.config.egress_http import http_client  # lazy: loads httpx

        headers = {
            "apikey": self._key,
            "Authorization": f"Bearer {self._key}",
            "Content-Type": "application/json",
        }
        content = json.dumps(body).encode() if body is not None else None
        try:
            with http_client(self._policy, "manage test users", timeout=15) as client:
                response = client.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise SetupError(f"Supabase Auth at {self.base} is unreachable: {exc}") from None
        if response.is_redirect or response.status_code >= 400:
            code = response.status_code
            hint = " (check the service-role key)" if code in (401, 403) else ""
            if response.is_redirect:
                hint = f" (a redirect to {response.headers.get('Location')}, not followed)"
            raise SetupError(
                f"Supabase Auth answered {code} to {method} {url.split('?')[0]}{hint}"
            )
        return json.loads(response.text or "null")

    def list_users(self) -> list[StoredUser]:
        users: list[StoredUser] = []
        page = 1
        while True:
            body = self._call("GET", f"{self.base}?page={page}&per_page=1000")
            batch = body.get("users", []) if isinstance(body, dict) else []
            users += [StoredUser(u["id"], u["email"], u.get("last_sign_in_at")) for u in batch]
            if len(batch) < 1000:
                return users
            page += 1

    def create(self, email: str, password: str, metadata: dict[str, Any]) -> StoredUser:
        body = self._call(
            "POST",
            self.base,
            {
                "email": email,
                "password": password,
                "email_confirm": True,
                "user_metadata": metadata,
            },
        )
        return StoredUser(id=body["id"], email=email)

    def set_password(self, user: StoredUser, password: str) -> None:
        self._call("PUT", f"{self.base}/{user.id}", {"password": password})

    def delete(self, user: StoredUser) -> None:
        self._call("DELETE", f"{self.base}/{user.id}")


@dataclass
class CredentialsFile:
    """The git-ignored credentials file, one section per environment."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> CredentialsFile:
        if not path.is_file():
            return cls(path, {"environments": {}})
        try:
            return cls(path, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); fix or delete it") from None

    def users(self, environment: str) -> list[dict[str, Any]]:
        section = self.data.setdefault("environments", {}).setdefault(environment, {})
        users: list[dict[str, Any]] = section.setdefault("users", [])
        return users

    def save(self) -> None:
        """Write with mode 0600 (atomically), creating the folder if needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


@dataclass
class CreateResult:
    created: list[str]
    reused: list[str]
    path: Path


def create_users(
    store: UserStore, credentials: CredentialsFile, environment: str, count: int, domain: str
) -> CreateResult:
    """Create ``loadtest-user-1..count``; reuse those that exist (no duplicates)."""
    check_domain(domain)
    if count < 1:
        raise ConfigError("--count must be at least 1")
    existing = {u.email: u for u in store.list_users()}
    saved = {u["email"]: u for u in credentials.users(environment)}
    created, reused = [], []
    for index in range(1, count + 1):
        email = test_email(index, domain)
        entry = saved.get(email)
        user = existing.get(email)
        if user is not None and entry is not None and entry.get("id") == user.id:
            reused.append(email)
            continue
        password = secrets.token_urlsafe(24)
        if user is None:
            user = store.create(email, password, {"orch_loadtest": True, "index": index})
            created.append(email)
        else:  # the account exists but we lack its password: reset it
            store.set_password(user, password)
            reused.append(email)
        saved[email] = {"index": index, "email": email, "id": user.id, "password": password}
    section = credentials.users(environment)
    section[:] = sorted(saved.values(), key=lambda u: int(u.get("index", 0)))
    credentials.save()
    return CreateResult(created, reused, credentials.path)


@dataclass
class CleanupResult:
    users: list[str]
    rows: dict[str, int]
    dry_run: bool


def cleanup_users(
    store: UserStore,
    database_url: str,
    credentials: CredentialsFile,
    environment: str,
    domain: str,
    *,
    only_ids: list[str] | None = None,
    dry_run: bool = False,
) -> CleanupResult:
    """Delete test users and every row they own; refuse any non-test account."""

    check_domain(domain)
    users = store.list_users()
    by_id = {u.id: u for u in users}
    if only_ids:
        chosen = []
        for user_id in only_ids:
            user = by_id.get(user_id)
            if user is None:
                raise ConfigError(f"no user with id {user_id} in environment {environment!r}")
            if not is_test_account(user.email, domain):
                raise RefusedError(
                    f"refusing to delete {user.email}: it is not a test account "
                    f"(loadtest-user-N@{domain})"
                )
            chosen.append(user)
    else:
        chosen = [u for u in users if is_test_account(u.email, domain)]
    rows = dict.fromkeys(OWNED_TABLES, 0)
    with connect(database_url, autocommit=True) as conn:
        for user in chosen:
            counts = _delete_owned_rows(conn, user.id, dry_run)
            for table, count in counts.items():
                rows[table] += count
            if not dry_run:
                store.delete(user)
    if not dry_run:
        gone = {u.email for u in chosen}
        section = credentials.users(environment)
        section[:] = [u for u in section if u.get("email") not in gone]
        if credentials.path.exists() or section:
            credentials.save()
    return CleanupResult([u.email for u in chosen], rows, dry_run)


def _delete_owned_rows(conn: Any, user_id: str, dry_run: bool) -> dict[str, int]:
    """Count (or delete) a user's rows, child tables first, in one transaction."""
    from psycopg import errors, sql

    counts: dict[str, int] = {}
    try:
        with conn.transaction():
            for table in OWNED_TABLES:
                name = sql.Identifier("public", table)
                if dry_run:
                    query = sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(name)
                    counts[table] = int(conn.execute(query, (user_id,)).fetchone()[0])
                else:
                    query = sql.SQL("DELETE FROM {} WHERE user_id = %s").format(name)
                    counts[table] = conn.execute(query, (user_id,)).rowcount
    except errors.UndefinedTable as exc:
        raise DatabaseError(
            f"a table test data lives in is missing ({exc.diag.message_primary}); "
            f"apply the migrations with `orch db migrate`"
        ) from None
    return counts


@dataclass
class UserRow:
    email: str
    id: str
    rows: dict[str, int]
    last_used: str | None


def list_users(
    store: UserStore, database_url: str, credentials: CredentialsFile, environment: str, domain: str
) -> list[UserRow]:
    """Test users with their data counts and when a run last used them."""

    saved = {u["email"]: u for u in credentials.users(environment)}
    found = []
    with connect(database_url, autocommit=True) as conn:
        for user in store.list_users():
            if not is_test_account(user.email, domain):
                continue
            counts = _count_rows(conn, user.id)
            last = saved.get(user.email, {}).get("last_used") or user.last_sign_in_at
            found.append(UserRow(user.email, user.id, counts, last))
    return sorted(found, key=lambda row: int(_EMAIL.match(row.email).group(1)))  # type: ignore[union-attr]


def _count_rows(conn: Any, user_id: str) -> dict[str, int]:
    from psycopg import sql

    counts = {}
    for table in OWNED_TABLES:
        query = sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(
            sql.Identifier("public", table)
        )
        counts[table] = int(conn.execute(query, (user_id,)).fetchone()[0])
    return counts


def users_for_run(credentials_path: Path, environment: str) -> list[dict[str, str]]:
    """The users a run hands to k6 (one per VU), marking them as used now."""
    if not credentials_path.is_file():
        return []
    credentials = CredentialsFile.load(credentials_path)
    users = credentials.users(environment)
    if not users:
        return []
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for user in users:
        user["last_used"] = now
    credentials.save()
    return [{"id": u["id"], "email": u["email"], "password": u["password"]} for u in users]
