"""Test users through the library, on a real PostgreSQL's auth.users: which accounts are
test accounts, reuse and password resets, the credentials file, and cleanup refusals."""
# ruff: noqa: F811 - pytest fixtures are imported from test_db_support and used as arguments

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from test_db_support import fresh_db, migrations_dir, pg_server, schema_db  # noqa: F401

from orchestrator.core import ConfigError, DatabaseError, RefusedError
from orchestrator.db import connect
from orchestrator.target.users import (
    CredentialsFile,
    LocalAuthStore,
    check_domain,
    cleanup_users,
    create_users,
    is_test_account,
    list_users,
    users_for_run,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
DOMAIN = "test.sales-machine.com"


@pytest.mark.parametrize(
    ("email", "domain", "is_test"),
    [
        ("loadtest-user-1@test.sales-machine.com", DOMAIN, True),
        ("LoadTest-User-12@Test.Sales-Machine.com", DOMAIN, True),
        ("loadtest-user-1@sales-machine.com", DOMAIN, False),  # another domain
        ("loadtest-user-1@test.sales-machine.com", "test.sales-machine.com.evil", False),
        ("loadtest-user-x@test.sales-machine.com", DOMAIN, False),
        ("ceo@test.sales-machine.com", DOMAIN, False),
        ("loadtest-user-1@sales-machine.com", "sales-machine.com", False),  # not a test domain
        ("loadtest-user-3@qa.example", "qa.example", True),
    ],
)
def test_which_accounts_are_test_accounts(email: str, domain: str, is_test: bool) -> None:
    assert is_test_account(email, domain) is is_test


def test_a_real_domain_is_refused_with_the_domains_to_use() -> None:
    with pytest.raises(ConfigError) as caught:
        check_domain("sales-machine.com")
    assert caught.value.message == (
        "test user domain 'sales-machine.com' is not a test domain; use one whose first label "
        "is 'test' (e.g. test.sales-machine.com) or that ends in .test, .example or .invalid"
    )


def test_users_are_reused_and_a_lost_password_is_reset(fresh_db: str, tmp_path: Path) -> None:
    store = LocalAuthStore(fresh_db)
    path = tmp_path / "data" / "test-users.json"
    first = create_users(store, CredentialsFile.load(path), "local", 3, DOMAIN)
    assert first.created == [f"loadtest-user-{i}@{DOMAIN}" for i in (1, 2, 3)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text(encoding="utf-8"))["environments"]["local"]["users"]
    assert [u["index"] for u in saved] == [1, 2, 3]
    # a second call makes none, and a fourth user joins the three
    second = create_users(store, CredentialsFile.load(path), "local", 4, DOMAIN)
    assert (second.created, len(second.reused)) == ([f"loadtest-user-4@{DOMAIN}"], 3)
    assert len(store.list_users()) == 4
    # another machine without the credentials: the accounts exist, their passwords are reset
    other = tmp_path / "elsewhere.json"
    third = create_users(store, CredentialsFile.load(other), "local", 2, DOMAIN)
    assert third.created == [] and len(third.reused) == 2
    fresh = json.loads(other.read_text(encoding="utf-8"))["environments"]["local"]["users"]
    assert {u["id"] for u in fresh} <= {u.id for u in store.list_users()}
    assert {u["password"] for u in fresh}.isdisjoint(u["password"] for u in saved)


def test_a_run_takes_the_saved_users_and_marks_them_used(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "test-users.json"
    assert users_for_run(path, "local") == []  # no file: no users, no error
    create_users(LocalAuthStore(fresh_db), CredentialsFile.load(path), "local", 2, DOMAIN)
    given = users_for_run(path, "local")
    assert [sorted(u) for u in given] == [["email", "id", "password"]] * 2
    assert users_for_run(path, "staging") == []
    saved = json.loads(path.read_text(encoding="utf-8"))["environments"]["local"]["users"]
    assert all(u["last_used"].endswith("+00:00") for u in saved)


def test_an_unreadable_credentials_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "test-users.json"
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"test-users\.json is unreadable .*; fix or delete it"):
        CredentialsFile.load(path)


def test_cleanup_refuses_what_is_not_a_test_account(schema_db: str, tmp_path: Path) -> None:
    store = LocalAuthStore(schema_db)
    credentials = CredentialsFile.load(tmp_path / "u.json")
    create_users(store, credentials, "local", 2, DOMAIN)
    boss = store.create("ceo@test.sales-machine.com", "pw", {})
    with pytest.raises(RefusedError) as refused:
        cleanup_users(store, schema_db, credentials, "local", DOMAIN, only_ids=[boss.id])
    assert refused.value.message == (
        "refusing to delete ceo@test.sales-machine.com: it is not a test account "
        "(loadtest-user-N@test.sales-machine.com)"
    )
    with pytest.raises(ConfigError, match="no user with id 0000 in environment 'local'"):
        cleanup_users(store, schema_db, credentials, "local", DOMAIN, only_ids=["0000"])
    # a dry run counts and deletes nothing; the real one spares the non-test account
    dry = cleanup_users(store, schema_db, credentials, "local", DOMAIN, dry_run=True)
    assert dry.dry_run and len(dry.users) == 2 and len(store.list_users()) == 3
    done = cleanup_users(store, schema_db, credentials, "local", DOMAIN)
    assert sorted(done.users) == [f"loadtest-user-{i}@{DOMAIN}" for i in (1, 2)]
    assert [u.email for u in store.list_users()] == ["ceo@test.sales-machine.com"]
    assert credentials.users("local") == []


def test_users_are_listed_in_number_order_with_their_rows(schema_db: str, tmp_path: Path) -> None:
    store = LocalAuthStore(schema_db)
    credentials = CredentialsFile.load(tmp_path / "u.json")
    create_users(store, credentials, "local", 11, DOMAIN)
    rows = list_users(store, schema_db, credentials, "local", DOMAIN)
    assert [r.email.split("@")[0] for r in rows][-3:] == [
        "loadtest-user-9", "loadtest-user-10", "loadtest-user-11",
    ]  # fmt: skip
    assert all(set(r.rows.values()) == {0} for r in rows)


def test_cleanup_without_the_tables_is_a_database_error(fresh_db: str, tmp_path: Path) -> None:
    store = LocalAuthStore(fresh_db)
    credentials = CredentialsFile.load(tmp_path / "u.json")
    create_users(store, credentials, "local", 1, DOMAIN)
    with pytest.raises(DatabaseError) as caught:
        cleanup_users(store, fresh_db, credentials, "local", DOMAIN)
    assert "a table test data lives in is missing" in caught.value.message
    assert caught.value.message.endswith("apply the migrations with `orch db migrate`")
    with connect(fresh_db) as conn:  # the account is kept when its rows could not be removed
        assert conn.execute("SELECT count(*) FROM auth.users").fetchone() == (1,)
