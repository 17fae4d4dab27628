"""The workflows' own step scripts, run with bash against a loopback sandbox.

`.github/workflows/load-test.yml` (nightly) and `pr-check.yml` (pull requests) are run step
by step by ``tests/workflow_steps.py``: their `run:` scripts, the ``${{ … }}`` expressions
substituted, the ``GITHUB_*`` files, a stand-in ``gh`` serving a previous run's baseline
artifact and recording its API calls. Each k6 run lasts two seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.config import SandboxSettings
from orchestrator.core import PROJECT_ROOT, ExitCode
from orchestrator.target import N8NWorkflows, start_sandbox
from tests.conftest import free_port
from tests.workflow_steps import (
    Contexts,
    JobRun,
    gh_calls,
    run_job,
    serve_artifact,
    tool_bin,
    workflow_yaml,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="the step scripts are bash, as on ubuntu-latest"),
    pytest.mark.skipif(shutil.which("jq") is None, reason="gh's --jq is served by jq"),
]

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
LOAD_TEST = WORKFLOWS / "load-test.yml"
SKIP_INSTALL = {"Install orch": "orch is installed here; the orch on PATH is this tree's"}
ONE_MIB = 1024 * 1024
FAST = (1.0, 3.0)  # sandbox latency, ms: median, p95
SLOW = (40.0, 80.0)  # far past the test project's regression tolerance (50 %, 20 ms)


@dataclass
class Workspace:
    """One project, the stand-in gh's folder, and a scratch folder for the job's files."""

    root: Path
    gh: Path
    scratch: Path

    def run(self, workflow: Path, ctx: Contexts, name: str, orch: str | None = None) -> JobRun:
        """Run ``workflow``'s job; ``orch``, a shell script, stands in for orch if given."""
        scratch = self.scratch / name
        bin_dir = tool_bin(scratch, self.gh)
        if orch is not None:
            (bin_dir / "orch").write_text(orch, encoding="utf-8")
        job = run_job(workflow, self.root, ctx, scratch=scratch, skip=SKIP_INSTALL)
        for step in job.steps:
            assert len(step.summary.encode()) <= ONE_MIB, step.name
        return job

    def run_folders(self) -> list[Path]:
        return sorted(p for p in (self.root / "results").glob("*") if p.is_dir())


@pytest.fixture
def workspace(project: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    config = project(yaml=workflow_yaml(free_port()))
    return Workspace(config.parent, tmp_path_factory.mktemp("gh"), tmp_path_factory.mktemp("job"))


@contextmanager
def staging_sandbox(root: Path, latency: tuple[float, float]) -> Iterator[str]:
    """The loopback sandbox the staging entry's URLs point at; yields its URL."""
    median, p95 = latency
    settings = SandboxSettings(port=free_port(), latency_ms_median=median, latency_ms_p95=p95)
    export = root / "workflows" / "linkedin-scraper.json"
    with start_sandbox(settings, n8n=N8NWorkflows((str(export),))) as box:
        yield box.url


def nightly(url: str, environment: str = "staging", profile: str = "smoke") -> Contexts:
    """A dispatch of load-test.yml: one scenario, the staging URLs in secrets."""
    return Contexts(
        inputs={"scenario": "linkedin-scrape", "environment": environment, "profile": profile},
        secrets={
            "STAGING_API_BASE_URL": url,
            "STAGING_N8N_BASE_URL": url,
            "STAGING_N8N_API_KEY": "not-checked-by-the-test-export",
        },
        github={"token": "fake-token", "run_id": 4242, "ref_name": "main", "repository": "a/b"},
    )


def orch_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """orch itself, in the project (for what a workflow takes as given: a baseline)."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=root, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def new_baselines(root: Path) -> list[Path]:
    return sorted((root / "new-baselines").glob("*.json"))


def test_nightly_passes_and_keeps_its_baseline(workspace: Workspace) -> None:
    with staging_sandbox(workspace.root, FAST) as url:
        job = workspace.run(LOAD_TEST, nightly(url), "pass")
    assert job.exit_code == 0, job.log()
    assert job.step("Baseline from").ran
    assert "no baseline artifact from a previous run" in job.step("Baseline from").output
    assert [c["argv"][:2] for c in gh_calls(workspace.gh)] == [["run", "list"]]
    assert job.summary.startswith("## linkedin-scrape: passed\n**✅ PASSED**")  # verdict first
    assert "```mermaid" in job.summary
    (run_dir,) = workspace.run_folders()
    assert run_dir.name.endswith("_linkedin-scrape_staging")
    assert (run_dir / "report.html").is_file() and (run_dir / "junit.xml").is_file()
    (baseline,) = new_baselines(workspace.root)
    assert baseline.name == "linkedin-scrape_staging.json"
    assert json.loads(baseline.read_text())["scenario"] == "linkedin-scrape"
    assert job.step("Run the scenarios").output.startswith(f"linkedin-scrape: exit 0, {run_dir}")


def test_nightly_threshold_failure_exits_99_and_keeps_no_baseline(workspace: Workspace) -> None:
    with staging_sandbox(workspace.root, FAST) as url:
        job = workspace.run(LOAD_TEST, nightly(url, profile="impossible"), "thresholds")
    assert job.exit_code == ExitCode.THRESHOLDS, job.log()
    assert job.step("Run the scenarios").exit_code == ExitCode.THRESHOLDS
    assert "## linkedin-scrape: thresholds crossed (exit 99)\n**❌" in job.summary, job.summary
    assert new_baselines(workspace.root) == []
    (run_dir,) = workspace.run_folders()
    assert (run_dir / "report.html").is_file()


def test_nightly_regression_against_the_previous_runs_baseline_exits_8(
    workspace: Workspace,
) -> None:
    with staging_sandbox(workspace.root, FAST) as url:
        first = workspace.run(LOAD_TEST, nightly(url), "fast")
    assert first.exit_code == 0, first.log()
    (baseline,) = new_baselines(workspace.root)
    run_id = serve_artifact(workspace.gh, "load-test.yml", "main", "baselines-staging", [baseline])
    figures = baseline.read_bytes()
    shutil.rmtree(workspace.root / "new-baselines")  # a new job starts from a clean checkout

    with staging_sandbox(workspace.root, SLOW) as url:
        job = workspace.run(LOAD_TEST, nightly(url), "slow")
    assert job.exit_code == ExitCode.REGRESSION, job.log()
    assert f"baselines from run {run_id}" in job.summary
    assert (workspace.root / "baselines" / baseline.name).read_bytes() == figures
    assert "## linkedin-scrape: REGRESSED against the baseline (exit 8)\n" in job.summary
    assert "## Against the baseline" in job.summary and "**REGRESSED**" in job.summary
    assert new_baselines(workspace.root) == []
    downloads = [c["argv"] for c in gh_calls(workspace.gh) if c["argv"][:2] == ["run", "download"]]
    assert downloads == [["run", "download", str(run_id), "--name", "baselines-staging",
                          "--dir", "previous-baselines"]]  # fmt: skip


def test_nightly_refuses_production_at_the_guard(workspace: Workspace) -> None:
    job = workspace.run(LOAD_TEST, nightly("http://127.0.0.1:9", "production"), "refused")
    assert job.exit_code == ExitCode.REFUSED, job.log()
    guard = job.step("Refuse production")
    assert guard.exit_code == ExitCode.REFUSED
    assert "::error::orch refused environment 'production'" in guard.output
    later = job.steps[job.steps.index(guard) + 1 :]
    assert later and not any(step.ran for step in later)
    assert not (workspace.root / "results").exists() or workspace.run_folders() == []
    assert gh_calls(workspace.gh) == []


# orch as far as the run step sees it: a run whose job summary is 2 MB, and one that stops
# before its run folder (exit 3, nothing on stdout).
HUGE_AND_NO_SUMMARY = """#!/bin/sh
case "$1 $2" in
  "env check") exit 0 ;;
  "run big") mkdir -p results/big; head -c 2000000 /dev/zero | tr '\\0' x \\
    > results/big/job-summary.md; echo "$PWD/results/big" ;;
  "run gone") echo "Error: unknown scenario" >&2; exit 3 ;;
  "baseline set") mkdir -p new-baselines; echo {} > "$5" ;;
  *) exit 1 ;;
esac
"""


def test_nightly_summary_stays_under_githubs_limit_and_says_what_is_missing(
    workspace: Workspace,
) -> None:
    ctx = nightly("http://127.0.0.1:9")
    ctx.inputs["scenario"] = "big gone"
    job = workspace.run(LOAD_TEST, ctx, "limits", orch=HUGE_AND_NO_SUMMARY)
    assert job.exit_code == ExitCode.CONFIG, job.log()
    summary = job.step("Run the scenarios").summary
    assert summary.startswith("## big: passed\nIts job summary (2000000 bytes) would take")
    assert "## gone: exit 3 (see the README's exit codes)\nNo job summary" in summary
    assert len(summary) < 1000  # and Workspace.run checked every step's summary <= 1 MiB


PR_CHECK = WORKFLOWS / "pr-check.yml"
MARKER = "<!-- orch-pr-check -->"


def pull_request() -> Contexts:
    """A pull request's run of pr-check.yml: no repository variable (the local sandbox)."""
    return Contexts(
        github={
            "token": "fake-token",
            "run_id": 5151,
            "ref_name": "17/merge",
            "base_ref": "main",
            "head_ref": "faster-templates",
            "repository": "a/b",
            "event_name": "pull_request",
            "event": {"pull_request": {"number": 17}},
        },
    )


def slow_local_sandbox(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    fast = f"latency_ms_median: {FAST[0]:g}\n      latency_ms_p95: {FAST[1]:g}\n"
    assert fast in text
    slow = f"latency_ms_median: {SLOW[0]:g}\n      latency_ms_p95: {SLOW[1]:g}\n"
    config.write_text(text.replace(fast, slow, 1), encoding="utf-8")


def comment_calls(state: Path) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in gh_calls(state) if c["argv"][:1] == ["api"]]


def test_pr_check_comments_once_then_updates_the_comment_on_a_regression(
    workspace: Workspace,
) -> None:
    root = workspace.root
    made = orch_cli(root, "run", "linkedin-scrape", "--profile", "smoke")
    baseline = root / "baselines" / "linkedin-scrape_local.json"  # the committed baseline
    orch_cli(root, "baseline", "set", made.stdout.strip().splitlines()[-1], "--out", str(baseline))

    job = workspace.run(PR_CHECK, pull_request(), "pr-pass")
    assert job.exit_code == 0, job.log()
    assert job.step("Fail with orch's exit code").ran
    comments = json.loads((workspace.gh / "comments.json").read_text())
    (first,) = comments
    assert first["issue"] == 17 and first["body"].startswith(MARKER)
    assert "Against the committed baselines/" in first["body"]
    assert "### linkedin-scrape: passed\n\nThresholds: **✅ PASSED**" in first["body"]
    assert "**No regression**" in first["body"]
    assert "| linkedin_webhook |" in first["body"] and "![" not in first["body"]
    assert comment_calls(workspace.gh) == [
        ("GET", "repos/a/b/issues/17/comments"),
        ("POST", "repos/a/b/issues/17/comments"),
    ]
    assert job.summary == first["body"]

    run_id = serve_artifact(workspace.gh, "load-test.yml", "main", "baselines-local", [baseline])
    baseline.unlink()  # this time the nightly's artifact is the reference
    slow_local_sandbox(root / "orch.yaml")
    job = workspace.run(PR_CHECK, pull_request(), "pr-regressed")
    assert job.exit_code == ExitCode.REGRESSION, job.log()
    assert job.step("Keep one PR comment").exit_code == 0  # commented before failing
    assert "orch exited 8" in job.step("Fail with orch's exit code").output
    (updated,) = json.loads((workspace.gh / "comments.json").read_text())
    assert updated["id"] == first["id"]
    assert f"Against baselines from load-test run {run_id} on main." in updated["body"]
    assert "### linkedin-scrape: REGRESSED against the baseline (exit 8)" in updated["body"]
    assert "**REGRESSED**: all, linkedin_webhook" in updated["body"]
    assert comment_calls(workspace.gh)[2:] == [
        ("GET", "repos/a/b/issues/17/comments"),
        ("PATCH", f"repos/a/b/issues/comments/{first['id']}"),
    ]
