"""Run a GitHub workflow job's own `run:` scripts, in order, with bash, on this machine.

What GitHub would do for a job, done small: the job's steps in order (``uses:`` steps
skipped, since their actions cannot run here), each step's ``${{ … }}`` expressions
substituted from explicit contexts (inputs, vars, secrets, a few ``github`` fields, env,
earlier steps' outputs), the ``GITHUB_*`` files given and read back, ``if:`` obeyed, and
the job stopped at the first failing step. An expression this module does not know fails
the test (:class:`UnhandledExpression`) instead of being guessed.

Also here: the stand-in ``gh`` (``tests/fake_gh.py``) and ``orch`` put on PATH, and the
short project the workflow tests run in (a staging and a production environment).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.core import PROJECT_ROOT
from tests.conftest import SHORT_PROJECT_YAML

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
LITERAL = re.compile(r"'((?:[^']|'')*)'")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")
# contexts whose missing keys GitHub evaluates to '' (an unset input, variable or secret)
LENIENT = {"inputs", "vars", "secrets", "env"}
# github context fields that runners also set as GITHUB_* variables
GITHUB_VARIABLES = ("ref_name", "repository", "run_id", "base_ref", "head_ref", "event_name")
STATUS = {"always()", "success()", "failure()", "!cancelled()", "cancelled()"}


class UnhandledExpression(AssertionError):
    """An expression the substitution does not know: the test must be taught it."""


@dataclass
class Contexts:
    """What ``${{ … }}`` may read: GitHub's contexts, as far as the workflows use them."""

    inputs: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    github: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def lookup(self, name: str) -> Any:
        root, *keys = name.split(".")
        if root not in {"inputs", "vars", "secrets", "github", "env", "steps"}:
            raise UnhandledExpression(f"unknown context {root!r} in {name!r}")
        value: Any = getattr(self, root)
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                if root in LENIENT or root == "steps":
                    return ""
                raise UnhandledExpression(f"no value for {name!r}: add it to the contexts")
            value = value[key]
        return value


def evaluate(expr: str, ctx: Contexts, *, failed: bool = False) -> Any:
    """One expression: ``a || b || 'literal'``, ``a == 'x'``, ``a != 'x'``, ``x && y``, a
    status function, a context name or a literal."""
    expr = expr.strip()
    if expr in STATUS:
        return {"always()": True, "success()": not failed, "failure()": failed}.get(
            expr, expr == "!cancelled()"
        )
    for op in ("||", "&&"):
        if op in expr:
            parts = [evaluate(p, ctx, failed=failed) for p in expr.split(op)]
            if op == "||":
                return next((p for p in parts if p), parts[-1])
            return next((p for p in parts if not p), parts[-1])
    for op in ("==", "!="):
        if op in expr:
            left, right = (str(evaluate(p, ctx, failed=failed)) for p in expr.split(op, 1))
            return (left == right) == (op == "==")
    if match := LITERAL.fullmatch(expr):
        return match.group(1).replace("''", "'")
    if NAME.fullmatch(expr):
        return ctx.lookup(expr)
    raise UnhandledExpression(f"cannot evaluate ${{{{ {expr} }}}}")


def substitute(text: str, ctx: Contexts) -> str:
    """``text`` with every ``${{ … }}`` replaced by its value."""

    def value(match: re.Match[str]) -> str:
        result = evaluate(match.group(1), ctx)
        if isinstance(result, bool):
            return str(result).lower()
        return "" if result is None else str(result)

    return EXPRESSION.sub(value, text)


def run_expressions(workflow: Path) -> list[str]:
    """Every ``${{ … }}`` that :func:`run_job` evaluates in ``workflow``: the workflow's and
    the job's ``env``, and each `run:` step's ``env``, ``run`` and ``if``."""
    data = load_workflow(workflow)
    (job,) = data["jobs"].values()
    texts = [*data.get("env", {}).values(), *job.get("env", {}).values()]
    found = []
    for step in job["steps"]:
        if "run" in step:
            texts += [*step.get("env", {}).values(), step["run"]]
            if "if" in step:  # an `if:` is an expression, with or without ${{ }}
                inner = EXPRESSION.fullmatch(str(step["if"]).strip())
                found.append(inner.group(1) if inner else str(step["if"]))
    return found + [m.group(1) for text in texts for m in EXPRESSION.finditer(str(text))]


def condition(step: dict[str, Any], ctx: Contexts, failed: bool) -> bool:
    """Whether a step runs: its ``if:`` (``success()`` by default)."""
    text = str(step.get("if", "success()"))
    inner = EXPRESSION.fullmatch(text.strip())
    expr = inner.group(1) if inner else text
    if not any(s in expr for s in STATUS):
        expr = f"success() && {expr}"  # GitHub adds success() to a condition without one
    return bool(evaluate(expr, ctx, failed=failed))


@dataclass
class StepRun:
    name: str
    ran: bool
    exit_code: int = 0
    output: str = ""
    summary: str = ""


@dataclass
class JobRun:
    steps: list[StepRun]

    @property
    def exit_code(self) -> int:
        """The first failing step's exit code (0 when every step that ran passed)."""
        return next((s.exit_code for s in self.steps if s.exit_code), 0)

    @property
    def summary(self) -> str:
        """The job summary: every step's ``$GITHUB_STEP_SUMMARY``, in order."""
        return "".join(s.summary for s in self.steps)

    def step(self, prefix: str) -> StepRun:
        (found,) = [s for s in self.steps if s.name.startswith(prefix)]
        return found

    def log(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.exit_code})\n{s.output}" for s in self.steps)


def read_commands_file(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` / ``$GITHUB_ENV``: ``name=value`` lines and ``name<<EOF`` blocks."""
    values: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else iter(())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            values[name] = "\n".join(block)
        elif line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def run_job(
    workflow: Path,
    workdir: Path,
    ctx: Contexts,
    *,
    scratch: Path,
    skip: dict[str, str],
    timeout: float = 240,
) -> JobRun:
    """Run the one job of ``workflow`` in ``workdir``, with the tools of :func:`tool_bin`
    first on PATH. ``skip`` names `run:` steps not to run (by the start of their name) with
    the reason, e.g. the install step: orch is installed. ``scratch`` gets the scripts and
    the ``GITHUB_*`` files.
    """
    data = load_workflow(workflow)
    (job,) = data["jobs"].values()
    files = scratch / "github"
    files.mkdir(parents=True, exist_ok=True)
    bin_dir = scratch / "bin"
    env = {"CI": "true", "GITHUB_ACTIONS": "true", **ctx.env}
    for key in GITHUB_VARIABLES:
        if key in ctx.github:
            env[f"GITHUB_{key.upper()}"] = str(ctx.github[key])
    for source in (data.get("env", {}), job.get("env", {})):
        for key, value in source.items():
            env[key] = substitute(str(value), Contexts(**{**vars(ctx), "env": env}))
    done: list[StepRun] = []
    skipped = set()
    for index, step in enumerate(job["steps"]):
        name = str(step.get("name", step.get("uses", f"step {index}")))
        failed = any(s.exit_code for s in done)
        here = Contexts(**{**vars(ctx), "env": env})
        reason = next((why for prefix, why in skip.items() if name.startswith(prefix)), None)
        if "run" not in step or not condition(step, here, failed) or reason:
            if reason:
                skipped.add(name)
            done.append(StepRun(name, ran=False, output=reason or ""))
            continue
        step_env = dict(env)
        for key, value in step.get("env", {}).items():
            step_env[key] = substitute(str(value), here)
        script = files / f"step-{index}.sh"
        script.write_text(substitute(str(step["run"]), Contexts(**{**vars(here), "env": step_env})))
        paths = {k: files / f"{k.lower()}-{index}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV")}
        paths["GITHUB_STEP_SUMMARY"] = files / f"summary-{index}.md"
        for path in paths.values():
            path.write_text("", encoding="utf-8")
        child_env = {
            **os.environ,
            **step_env,
            **{k: str(v) for k, v in paths.items()},
            "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
            + os.environ.get("PATH", ""),
        }
        proc = subprocess.run(
            ["bash", "-e", str(script)],
            cwd=workdir,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        done.append(
            StepRun(
                name,
                ran=True,
                exit_code=proc.returncode,
                output=proc.stdout + proc.stderr,
                summary=paths["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"),
            )
        )
        if "id" in step:
            ctx.steps[str(step["id"])] = {"outputs": read_commands_file(paths["GITHUB_OUTPUT"])}
        env.update(read_commands_file(paths["GITHUB_ENV"]))
    missing = [prefix for prefix in skip if not any(n.startswith(prefix) for n in skipped)]
    assert not missing, f"{workflow.name} has no step named {missing}"
    return JobRun(done)


def tool_bin(scratch: Path, fake_gh_state: Path) -> Path:
    """``scratch/bin``, for PATH, with ``gh`` (the stand-in, serving ``fake_gh_state``) and
    ``orch`` (this tree's, by the interpreter running the tests)."""
    bin_dir = scratch / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake_gh_state.mkdir(parents=True, exist_ok=True)
    shims = {
        "gh": f'FAKE_GH_DIR="{fake_gh_state}" exec "{sys.executable}" '
        f'"{PROJECT_ROOT / "tests" / "fake_gh.py"}" "$@"',
        "orch": f'PYTHONPATH="{PROJECT_ROOT}" exec "{sys.executable}" -m orchestrator "$@"',
    }
    for name, line in shims.items():
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\n{line}\n", encoding="utf-8")
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def serve_artifact(state: Path, workflow: str, branch: str, name: str, files: list[Path]) -> int:
    """Record a successful earlier run of ``workflow`` on ``branch`` whose artifact ``name``
    holds ``files``, for the stand-in ``gh``. Returns the run's id."""
    runs_file = state / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.is_file() else []
    run_id = 7000 + len(runs)
    runs.insert(0, {"databaseId": run_id, "workflow": workflow, "branch": branch,
                    "status": "success"})  # fmt: skip
    runs_file.write_text(json.dumps(runs), encoding="utf-8")
    folder = state / "artifacts" / str(run_id) / name
    folder.mkdir(parents=True)
    for path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    return run_id


def gh_calls(state: Path) -> list[dict[str, Any]]:
    path = state / "calls.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines]


# The short project's staging entry, as the shipped orch.yaml's: URLs and key from STAGING_*
# variables (the workflows read them from secrets); and production, to be refused.
STAGING_AND_PRODUCTION = """\
  staging:
    kind: staging
    base_url: ${STAGING_API_BASE_URL}
    n8n_base_url: ${STAGING_N8N_BASE_URL}
    secrets:
      WEBHOOK_SECRET: STAGING_N8N_API_KEY
  production:
    kind: production
    base_url: https://api.sales-machine.com
    n8n_base_url: https://n8n.srv997159.hstgr.cloud
"""
# Tolerances wide enough for a loaded 2-core machine's noise on a millisecond sandbox, and
# far below the slow sandbox's tens of milliseconds.
WORKFLOW_REGRESSION = """\
regression:
  p95_increase_pct: 50
  p95_min_increase_ms: 20
production:
  hosts: [api.sales-machine.com, n8n.srv997159.hstgr.cloud]
"""


def workflow_yaml(port: int) -> str:
    """The short project's orch.yaml, with the staging and production entries above, and
    VUs enough in the smoke profile for a slow sandbox's requests (all delivered)."""
    smoke_vus = "preAllocatedVUs: 2\n        maxVUs: 10\n"
    text = SHORT_PROJECT_YAML.format(port=port)
    assert smoke_vus in text
    text = text.replace(smoke_vus, "preAllocatedVUs: 10\n        maxVUs: 20\n", 1)
    head, rest = text.split("  staging:\n", 1)
    rest = rest.split("scenarios:\n", 1)[1]
    return head + STAGING_AND_PRODUCTION + "scenarios:\n" + rest + WORKFLOW_REGRESSION
