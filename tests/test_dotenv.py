"""The project's `.env`: read by python-dotenv, never over the real environment, never echoed."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest

from orchestrator.cli.options import load_project
from orchestrator.config import load_dotenv


@pytest.fixture(autouse=True)
def environ() -> Iterator[None]:
    """Whatever a test's `.env` sets is gone after it."""
    with mock.patch.dict(os.environ):
        yield


def write_env(folder: Path, text: str) -> Path:
    path = folder / ".env"
    path.write_text(text, encoding="utf-8")
    return path


def test_quoting_escaping_export_and_comments(tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "# a comment line = with an equals sign\n"
        "ORCH_T_PLAIN=plain value\n"
        "export ORCH_T_EXPORTED=exported\n"
        "ORCH_T_TRAILING=value # a comment after an unquoted value\n"
        'ORCH_T_DOUBLE="has # no comment; and = signs"\n'
        "ORCH_T_SINGLE='raw \\n $HOME ${HOME}'\n"
        'ORCH_T_ESCAPED="tab\\there \\"quoted\\" back\\\\slash"\n'
        'ORCH_T_MULTILINE="-----BEGIN KEY-----\nabc\n-----END KEY-----"\n'
        "  ORCH_T_SPACED  =  spaced  \n"
        "ORCH_T_EMPTY=\n"
        "ORCH_T_DOLLAR=pa${ss}word\n"
        "ORCH_T_BARE\n",
    )
    loaded = load_dotenv(path)
    assert loaded == [
        "ORCH_T_PLAIN",
        "ORCH_T_EXPORTED",
        "ORCH_T_TRAILING",
        "ORCH_T_DOUBLE",
        "ORCH_T_SINGLE",
        "ORCH_T_ESCAPED",
        "ORCH_T_MULTILINE",
        "ORCH_T_SPACED",
        "ORCH_T_EMPTY",
        "ORCH_T_DOLLAR",
    ]
    assert os.environ["ORCH_T_PLAIN"] == "plain value"
    assert os.environ["ORCH_T_EXPORTED"] == "exported"
    assert os.environ["ORCH_T_TRAILING"] == "value"
    assert os.environ["ORCH_T_DOUBLE"] == "has # no comment; and = signs"
    assert os.environ["ORCH_T_SINGLE"] == "raw \\n $HOME ${HOME}"  # single quotes: as written
    assert os.environ["ORCH_T_ESCAPED"] == 'tab\there "quoted" back\\slash'
    assert os.environ["ORCH_T_MULTILINE"] == "-----BEGIN KEY-----\nabc\n-----END KEY-----"
    assert os.environ["ORCH_T_SPACED"] == "spaced"
    assert os.environ["ORCH_T_EMPTY"] == ""
    assert os.environ["ORCH_T_DOLLAR"] == "pa${ss}word"  # no expansion: a secret stays intact
    assert "ORCH_T_BARE" not in os.environ  # a name without '=' sets nothing


def test_the_real_environment_wins(tmp_path: Path) -> None:
    os.environ["ORCH_T_SET"] = "from the shell"
    os.environ["ORCH_T_EMPTY_SET"] = ""
    path = write_env(tmp_path, "ORCH_T_SET=from .env\nORCH_T_EMPTY_SET=x\nORCH_T_NEW=new\n")
    assert load_dotenv(path) == ["ORCH_T_NEW"]
    assert os.environ["ORCH_T_SET"] == "from the shell"
    assert os.environ["ORCH_T_EMPTY_SET"] == ""
    assert os.environ["ORCH_T_NEW"] == "new"


def test_no_file_loads_nothing(tmp_path: Path) -> None:
    assert load_dotenv(tmp_path / ".env") == []
    (tmp_path / "folder").mkdir()
    assert load_dotenv(tmp_path / "folder") == []


def test_an_unparsable_line_is_named_by_number_not_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sentinel-dotenv-5e2a91"
    path = write_env(
        tmp_path, f'ORCH_T_BEFORE=ok\nORCH_T_BROKEN="{secret}\nORCH_T_AFTER={secret}x\n'
    )
    with caplog.at_level(logging.WARNING):
        loaded = load_dotenv(path)
    assert "ORCH_T_BEFORE" in loaded and "ORCH_T_BROKEN" not in loaded
    assert "line 2" in caplog.text
    captured = capsys.readouterr()
    assert secret not in caplog.text + captured.out + captured.err


def test_commands_load_the_env_beside_the_config(project: Callable[..., Path]) -> None:
    config = project()
    write_env(config.parent, "export ORCH_T_FROM_PROJECT='quoted # value'\n")
    load_project(str(config))
    assert os.environ["ORCH_T_FROM_PROJECT"] == "quoted # value"
