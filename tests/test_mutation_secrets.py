"""Secret handling, held exactly: a `.env` loads without overriding the real environment,
values are redacted longest first, URL and key=value passwords are hidden, and a local
sandbox that checks webhook auth gets its own random key. Fast: files in tmp_path only."""

from __future__ import annotations

import locale
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config.model import Environment
from orchestrator.config.secrets import (
    Redactor,
    load_dotenv,
    provide_sandbox_secret,
    redact_url,
    sandbox_provided_variable,
)

SET_HERE = ("MUT_A", "MUT_B", "MUT_C", "MUT_BARE", "MUT_SANDBOX_KEY", "ORCH_SANDBOX_WEBHOOK_SECRET")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The variables these tests set, unset before and restored after."""
    for name in SET_HERE:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    for name in SET_HERE:
        os.environ.pop(name, None)


def test_a_missing_env_file_loads_nothing(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    assert load_dotenv(tmp_path / ".env") == []
    assert load_dotenv(tmp_path) == []  # a folder is not a .env file


def test_env_file_sets_unset_variables_only_and_literally(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("MUT_B", "from the shell")
    path = tmp_path / ".env"
    path.write_text(
        "MUT_A=s3cret$HOME${HOME}\nMUT_B=from the file\nMUT_BARE\nexport MUT_C='quoted value'\n",
        encoding="utf-8",
    )
    assert load_dotenv(path) == ["MUT_A", "MUT_C"]
    assert os.environ["MUT_A"] == "s3cret$HOME${HOME}"  # not expanded
    assert os.environ["MUT_B"] == "from the shell"  # never overridden
    assert os.environ["MUT_C"] == "quoted value"
    assert "MUT_BARE" not in os.environ  # a bare name sets nothing


def test_env_file_is_read_as_utf8_whatever_the_locale(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".env"
    path.write_text("MUT_A=pässwörd€\n", encoding="utf-8")
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # a shell with LANG=C: ASCII by default
    try:
        assert load_dotenv(path) == ["MUT_A"]
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    assert os.environ["MUT_A"] == "pässwörd€"


def test_redactor_replaces_every_occurrence_longest_first() -> None:
    redact = Redactor(["abcd", "abcdefgh", "", "xyz", "abcd"])
    assert redact("abcdefgh then abcd, abcd and xyz") == "*** then ***, *** and xyz"
    assert redact("nothing secret") == "nothing secret"
    assert Redactor([])("abcd") == "abcd"


def test_redactor_threshold_is_four_characters() -> None:
    assert Redactor(["1234"])("a1234b") == "a***b"
    assert Redactor(["123"])("a123b") == "a123b"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db.example.com:5432/app", "postgresql://app:***@db.example.com:5432/app"),
        ("postgres://app:p%40ss@db:5432/app", "postgres://app:***@db:5432/app"),
        ("postgres://app@db:5432/app", "postgres://app@db:5432/app"),
        ("host=db password=s3cret user=app", "host=db password=*** user=app"),
        ("host=db PASSWORD = 's3 \\' cret' user=app", "host=db PASSWORD = *** user=app"),
        ("postgresql://app@db/app?password=s3cret&sslmode=require",
         "postgresql://app@db/app?password=***&sslmode=require"),
        ("mypassword=keep", "mypassword=keep"),
        ("no secret here", "no secret here"),
    ],
)  # fmt: skip
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _local(sandbox: dict[str, object] | None, kind: str = "local") -> Environment:
    return Environment.model_validate(
        {"kind": kind, "base_url": "http://127.0.0.1:9", "sandbox": sandbox}
    )


def test_sandbox_variable_only_for_a_local_sandbox_that_checks_auth() -> None:
    assert sandbox_provided_variable(_local(None)) is None
    assert sandbox_provided_variable(_local({})) is None
    assert sandbox_provided_variable(_local({"webhook_auth": "none"})) is None
    assert sandbox_provided_variable(_local({"webhook_auth": "bearer"})) == (
        "ORCH_SANDBOX_WEBHOOK_SECRET"
    )
    named = {"webhook_auth": "bearer", "webhook_secret_env": "MUT_SANDBOX_KEY"}
    assert sandbox_provided_variable(_local(named)) == "MUT_SANDBOX_KEY"
    assert sandbox_provided_variable(_local(named, kind="staging")) is None


def test_provide_sandbox_secret_sets_a_random_key_once(clean_env: pytest.MonkeyPatch) -> None:
    env = _local({"webhook_auth": "bearer", "webhook_secret_env": "MUT_SANDBOX_KEY"})
    assert provide_sandbox_secret(_local(None)) is None
    assert provide_sandbox_secret(env) == "MUT_SANDBOX_KEY"
    key = os.environ["MUT_SANDBOX_KEY"]
    assert len(key) == 32  # 24 random bytes, URL-safe base64
    assert provide_sandbox_secret(env) is None  # already set: kept
    assert os.environ["MUT_SANDBOX_KEY"] == key
    clean_env.setenv("MUT_SANDBOX_KEY", "")
    assert provide_sandbox_secret(env) == "MUT_SANDBOX_KEY"  # empty counts as unset
    assert os.environ["MUT_SANDBOX_KEY"] not in ("", key)


def test_an_explicit_sandbox_key_is_never_overridden(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MUT_SANDBOX_KEY", "chosen-key")
    env = _local({"webhook_auth": "bearer", "webhook_secret_env": "MUT_SANDBOX_KEY"})
    assert provide_sandbox_secret(env) is None
    assert os.environ["MUT_SANDBOX_KEY"] == "chosen-key"
