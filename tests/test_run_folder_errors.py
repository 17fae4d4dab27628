"""Reading a folder that is not a good run: each case ends with exit 3 and a message that
says what is wrong and what to do, and nothing is written into the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import ExitCode


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param(None, "it holds no run.json, no raw k6 output", id="empty-folder"),
        pytest.param(
            b"{not json", "run.json is not a JSON object (unreadable or corrupt)", id="corrupt"
        ),
        pytest.param(b"[]", "run.json is not a JSON object", id="a-list"),
        pytest.param(b"\xff\xfe\x00", "run.json is not a JSON object", id="not-utf8"),
    ],
)
def test_a_folder_without_a_readable_run_is_refused_and_left_alone(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    if content is not None:
        (tmp_path / "run.json").write_bytes(content)
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert says in result.output
    assert sorted(tmp_path.iterdir()) == before  # no report, no results.json


def test_a_wrong_value_in_run_json_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"outcome": "exploded", "scenario": 3}')
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "run.json: scenario: Input should be a valid string" in result.output
    assert "outcome: Input should be 'running'" in result.output
    assert "correct or remove that key" in result.output


def test_a_newer_schema_is_refused_rather_than_misread(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"schema_version": 999, "outcome": "passed"}')
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "schema_version 999 is not one this orch reads" in result.output


def test_a_file_given_as_the_run_folder_is_refused(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "run.json"
    not_a_folder.write_text("{}")
    result = CliRunner().invoke(main, ["report", str(not_a_folder)])
    assert result.exit_code in (ExitCode.USAGE, ExitCode.CONFIG), result.output
    assert "Traceback" not in result.output
