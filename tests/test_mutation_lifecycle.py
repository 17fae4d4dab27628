"""How k6's end becomes a run's outcome, exit code and run.json notes
(``execution.run_outcome``): every branch of ``classify`` and ``record_outcome``, and how
refused connections are counted. Fast: no k6, the manifest is not saved."""

from __future__ import annotations

import pytest

from orchestrator.config import Redactor
from orchestrator.core import ExitCode, Outcome
from orchestrator.execution.run_outcome import (
    BLOCKED_MARKERS,
    BlockedConnections,
    classify,
    record_outcome,
)
from orchestrator.execution.runner import K6Outcome
from orchestrator.results import RunManifest

SECRET = "tok-1234-secret"
REFUSED_LINE = (
    '  level=warning msg="Request Failed" error="dial: IP (10.0.0.7) is in a blacklisted '
    f'range (10.0.0.0/8)" url=https://hook.example/{SECRET}  '
)
LOST = "the sandbox at http://127.0.0.1:8765 stopped during the run"
IO = "write raw.csv: No space left on device"
IO_NOTE = (
    f"k6 was stopped because the run folder could not be written: {IO}; what was written "
    "is kept (free space, then rebuild the report with `orch report`)"
)


def _refused(times: int = 1) -> BlockedConnections:
    blocked = BlockedConnections()
    for _ in range(times):
        blocked.see(REFUSED_LINE)
    return blocked


def _record(
    ended: K6Outcome, blocked: BlockedConnections | None = None, lost: str | None = None
) -> tuple[ExitCode, RunManifest]:
    manifest = RunManifest.start(scenario="s")
    code = record_outcome(manifest, ended, Redactor([SECRET]), blocked, lost)
    assert manifest.exit_code == int(code)
    return code, manifest


# ------------------------------------------------------------------ classify


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        (K6Outcome(0, False), (Outcome.PASSED, ExitCode.OK)),
        (K6Outcome(99, False), (Outcome.THRESHOLDS_FAILED, ExitCode.THRESHOLDS)),
        (K6Outcome(98, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(100, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(1, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(-1, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(104, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(106, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(105, False), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED)),
        (K6Outcome(None, False, killed_by_signal=9), (Outcome.CRASHED, ExitCode.K6_ERROR)),
        (K6Outcome(0, True), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED)),
        (K6Outcome(99, True), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED)),
        (K6Outcome(None, True), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED)),
        (K6Outcome(0, False, io_error=IO), (Outcome.IO_ERROR, ExitCode.SETUP)),
        (K6Outcome(105, True, io_error=IO), (Outcome.IO_ERROR, ExitCode.SETUP)),
        (K6Outcome(None, False, io_error=IO), (Outcome.IO_ERROR, ExitCode.SETUP)),
        (K6Outcome(0, False, io_error=""), (Outcome.PASSED, ExitCode.OK)),
    ],
)
def test_classify_maps_every_way_k6_ends(
    ended: K6Outcome, expected: tuple[Outcome, ExitCode]
) -> None:
    assert classify(ended) == expected


def test_the_exit_codes_are_the_readme_numbers() -> None:
    assert [int(code) for _, code in map(classify, [K6Outcome(0, False), K6Outcome(99, False),
            K6Outcome(1, False), K6Outcome(0, True), K6Outcome(0, False, io_error=IO)])] == [
        0, 99, 5, 130, 4]  # fmt: skip


# ------------------------------------------------------------------ refused connections


@pytest.mark.parametrize("marker", BLOCKED_MARKERS)
def test_each_marker_k6_prints_for_a_refusal_counts(marker: str) -> None:
    blocked = BlockedConnections()
    blocked.see(f"level=warning msg=x error={marker}")
    assert (blocked.count, blocked.examples) == (1, [f"level=warning msg=x error={marker}"])


def test_the_markers_are_the_words_k6_and_the_checked_request_print() -> None:
    assert BLOCKED_MARKERS == (
        "is in a blacklisted range",
        "is in a blocked pattern",
        "orch egress: refused",
    )


def test_ordinary_lines_count_nothing() -> None:
    blocked = BlockedConnections()
    assert (blocked.count, blocked.examples) == (0, [])
    blocked.see('level=warning msg="Request Failed" error="connection refused"')
    blocked.see("")
    assert (blocked.count, blocked.examples) == (0, [])


def test_every_refusal_counts_and_three_examples_are_kept_stripped_and_cut() -> None:
    blocked = BlockedConnections()
    lines = [f" {i} is in a blocked pattern " + "x" * 400 for i in range(5)]
    for line in lines:
        blocked.see(line)
    assert blocked.count == 5
    assert blocked.examples == [line.strip()[:300] for line in lines[:3]]
    assert [len(e) for e in blocked.examples] == [300, 300, 300]
    assert blocked.examples[0].startswith("0 is in")


# ------------------------------------------------------------------ record_outcome


def test_a_clean_end_is_written_whole_into_the_manifest() -> None:
    ended = K6Outcome(0, False, command=["k6", "run", "-e", f"KEY={SECRET}", "s.js"],
                      resources={"cpu_avg_pct": 12.5})  # fmt: skip
    code, manifest = _record(ended, BlockedConnections(), None)
    assert code is ExitCode.OK
    assert (manifest.outcome, manifest.exit_code) == (Outcome.PASSED, 0)
    assert (manifest.k6_exit_code, manifest.k6_signal) == (0, None)
    assert manifest.command == ["k6", "run", "-e", "KEY=***", "s.js"]
    assert manifest.load_generator == {"cpu_avg_pct": 12.5}
    assert manifest.notes == []


def test_a_killed_k6_keeps_its_signal_and_no_exit_code() -> None:
    code, manifest = _record(K6Outcome(None, False, killed_by_signal=9))
    assert code is ExitCode.K6_ERROR
    assert (manifest.outcome, manifest.exit_code) == (Outcome.CRASHED, 5)
    assert (manifest.k6_exit_code, manifest.k6_signal) == (None, 9)
    assert manifest.load_generator is None and manifest.command == []


@pytest.mark.parametrize("k6_exit", [0, 99, 1, None])
def test_a_refused_connection_makes_any_uninterrupted_run_refused(k6_exit: int | None) -> None:
    code, manifest = _record(K6Outcome(k6_exit, False), _refused(2))
    assert code is ExitCode.REFUSED
    assert (manifest.outcome, manifest.exit_code) == (Outcome.REFUSED, 6)
    assert manifest.notes == [
        "k6 refused 2 connection(s) outside the allow-list (a redirect or a URL leading "
        "elsewhere), e.g.: level=warning msg=\"Request Failed\" error=\"dial: IP (10.0.0.7) "
        'is in a blacklisted range (10.0.0.0/8)" url=https://hook.example/***'
    ]
    assert manifest.k6_exit_code == k6_exit


@pytest.mark.parametrize("ended", [K6Outcome(None, True), K6Outcome(105, False)])
def test_an_interrupted_run_stays_interrupted_despite_refusals(ended: K6Outcome) -> None:
    code, manifest = _record(ended, _refused())
    assert code is ExitCode.INTERRUPTED
    assert (manifest.outcome, manifest.exit_code) == (Outcome.INTERRUPTED, 130)
    assert manifest.notes == []


def test_no_refusal_counted_is_no_refusal() -> None:
    blocked = BlockedConnections()
    blocked.see("an ordinary line")
    code, manifest = _record(K6Outcome(99, False), blocked)
    assert (code, manifest.outcome, manifest.notes) == (
        ExitCode.THRESHOLDS, Outcome.THRESHOLDS_FAILED, [])  # fmt: skip


def test_an_io_error_is_noted_with_what_to_do() -> None:
    code, manifest = _record(K6Outcome(None, False, io_error=IO))
    assert code is ExitCode.SETUP
    assert (manifest.outcome, manifest.exit_code) == (Outcome.IO_ERROR, 4)
    assert manifest.notes == [IO_NOTE]


def test_refusal_io_error_and_lost_target_are_all_noted_in_that_order() -> None:
    code, manifest = _record(K6Outcome(0, False, io_error=IO), _refused(), LOST)
    assert code is ExitCode.REFUSED and manifest.outcome == Outcome.REFUSED
    assert len(manifest.notes) == 3
    assert manifest.notes[0].startswith("k6 refused 1 connection(s)")
    assert manifest.notes[1:] == [IO_NOTE, LOST]


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        (K6Outcome(0, False), (Outcome.TARGET_LOST, ExitCode.SETUP)),
        (K6Outcome(99, False), (Outcome.TARGET_LOST, ExitCode.SETUP)),
        (K6Outcome(107, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR)),
        (K6Outcome(None, False), (Outcome.CRASHED, ExitCode.K6_ERROR)),
        (K6Outcome(0, True), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED)),
        (K6Outcome(0, False, io_error=IO), (Outcome.IO_ERROR, ExitCode.SETUP)),
    ],
)
def test_a_lost_target_overrides_only_a_judged_end(
    ended: K6Outcome, expected: tuple[Outcome, ExitCode]
) -> None:
    code, manifest = _record(ended, None, LOST)
    assert (manifest.outcome, code) == expected
    assert manifest.notes[-1] == LOST


def test_a_refused_run_whose_target_was_lost_stays_refused() -> None:
    code, manifest = _record(K6Outcome(0, False), _refused(), LOST)
    assert (manifest.outcome, code) == (Outcome.REFUSED, ExitCode.REFUSED)
    assert manifest.notes[-1] == LOST


def test_an_empty_lost_note_is_no_lost_target() -> None:
    code, manifest = _record(K6Outcome(0, False), None, "")
    assert (manifest.outcome, code, manifest.notes) == (Outcome.PASSED, ExitCode.OK, [])
