"""Render a scenario's Jinja2 template into a k6 script folder.

The folder holds the script and a copy of the shared helper modules (`k6_scripts/`) that it
imports, so it runs anywhere as it is (natively, in a container, on a cluster). Secrets are
never rendered: the script reads them from ``__ENV`` at run time.

Values reach the script only as data: every ``{{ expression }}`` is emitted as a JSON literal
(see :func:`js_literal`), so no value from orch.yaml, the environment or a name can end a
string, a comment or the ``options`` object and change the script's code. Templates use
values as JavaScript data (``const WORKFLOW = {{ workflow_name }};``), never by pasting them
inside a string, a template literal or code.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from orchestrator.config import EgressPolicy, OrchConfig, ResolvedRun, guard_run
from orchestrator.core import ConfigError, SetupError
from orchestrator.results.ingest import recorded_system_tags
from orchestrator.results.summary import parse_metric_key
from orchestrator.target import WEBHOOK_PATH_VAR, is_webhook_scenario, scenario_webhook

HELPERS_DIR_NAME = "k6_scripts"

# Environment variables through which the script learns its targets (so a Docker runner can
# rewrite loopback URLs); the rendered defaults let the script run under a plain `k6 run`.
BASE_URL_VAR = "ORCH_BASE_URL"
N8N_BASE_URL_VAR = "ORCH_N8N_BASE_URL"

# Variables ending in this name files in the script's k6_scripts/data/ folder.
DATA_FILE_SUFFIX = "_file"

# Characters JSON leaves as they are but that could still end something around a literal
# (``</script>``, an HTML comment) or, in old parsers, a line: written as \uXXXX instead.
_JS_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class JsLiteral(str):
    """Text that orch itself made into a JavaScript literal: rendered as it is."""


def js_literal(value: Any, *, indent: int | None = None) -> JsLiteral:
    """``value`` as a JSON literal that is also safe anywhere in JavaScript source.

    ASCII only, so no raw newline, U+2028 or U+2029 can end a ``//`` comment or a string;
    ``<``, ``>`` and ``&`` escaped too. Values JSON cannot hold (a date from YAML) become
    their text; an undefined variable raises Jinja's UndefinedError as usual.
    """
    text = json.dumps(value, ensure_ascii=True, indent=indent, default=str)
    for char, escaped in _JS_ESCAPES.items():
        text = text.replace(char, escaped)
    return JsLiteral(text)


def _finalize(value: Any) -> str:
    """Jinja's last step for every ``{{ expression }}``: a JSON literal, unless orch made
    the value one already (the ``tojson`` filter)."""
    if isinstance(value, JsLiteral):
        return value
    return js_literal(value)


@dataclass(frozen=True)
class RenderedScript:
    """A rendered script folder."""

    directory: Path
    script_name: str
    # `k6 run` flags the script needs besides its own options (a script of the user's:
    # the allow-list, which orch's own scripts carry in their options)
    k6_args: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return self.directory / self.script_name


def build_environment(templates_dir: Path) -> jinja2.Environment:
    """The Jinja environment of k6 scripts: strict undefined, and every ``{{ expression }}``
    written as a JSON literal (HTML autoescaping does not apply: the output is JS).

    ``tojson`` stays for readability: it writes the same literal, indented. There is no
    ``safe`` filter: nothing a template receives is ever pasted as code.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = lambda value: js_literal(value, indent=2)
    del env.filters["safe"]
    return env


def _system_tags(thresholds: dict[str, Any]) -> list[str]:
    """``systemTags``: the tags the report reads and those the thresholds filter on."""
    filtered: set[str] = set()
    for key in thresholds:
        filtered.update(parse_metric_key(key)[1])
    return recorded_system_tags(filtered)


def k6_options(run: ResolvedRun, policy: EgressPolicy | None = None) -> dict[str, Any]:
    """The `options` object the script exports: one k6 scenario, thresholds, tags, the
    system tags the report reads, and the environment's allow-list as k6 enforces it at
    connect time (``blacklistIPs``: every address outside it; ``blockHostnames``:
    production's names)."""
    scenario_options = run.profile.k6_options()
    blocked = policy.k6_options() if policy else {}
    return {
        **blocked,
        "scenarios": {run.scenario_name.replace("-", "_"): scenario_options},
        "thresholds": run.thresholds,
        # Tags go on every metric sample (and so into every raw line): keep them few.
        "tags": dict(run.scenario.tags),
        "systemTags": _system_tags(run.thresholds),
        "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"],
    }


def template_context(run: ResolvedRun, policy: EgressPolicy | None = None) -> dict[str, Any]:
    """Variables a scenario template sees (never secret values).

    A scenario that posts to an N8N webhook (``webhook_export`` or ``webhook_path``) also
    sees ``webhook_path``: the path N8N serves for the export's trigger, derived by N8N's
    rules (:mod:`orchestrator.target.n8n`), unless ``webhook_path`` overrides it.
    """
    webhook: dict[str, Any] = {}
    if is_webhook_scenario(run.vars):
        where = f"scenario {run.scenario_name!r} (environment {run.environment_name!r})"
        webhook[WEBHOOK_PATH_VAR] = scenario_webhook(run.vars, where).path
    return {
        "scenario": run.scenario_name,
        "environment": run.environment_name,
        "environment_kind": run.environment.kind,
        "profile": run.profile_name,
        "options": k6_options(run, policy),
        "base_url": run.base_url,
        "n8n_base_url": run.n8n_base_url,
        # names of __ENV variables: use them as __ENV[{{ base_url_var }}]
        "base_url_var": BASE_URL_VAR,
        "n8n_base_url_var": N8N_BASE_URL_VAR,
        "secret_names": sorted(run.secret_env),
        "vars": run.vars,
        **run.vars,
        **webhook,
    }


def _plain_file_name(value: str) -> bool:
    """True for a non-empty name of a file inside one folder (no way out of it)."""
    return bool(value) and not any(part in value for part in ("/", "\\", "..", "\0"))


def check_names(run: ResolvedRun) -> None:
    """Refuse names that would leave their folder: data files the script opens (variables
    ending in ``_file``, read from ``k6_scripts/data/``) and the script's own file name."""
    for key, value in run.vars.items():
        if key.endswith(DATA_FILE_SUFFIX) and not (
            isinstance(value, str) and _plain_file_name(value)
        ):
            raise ConfigError(
                f"scenario {run.scenario_name!r}: vars.{key} must name a file in "
                f"k6_scripts/data/ (without '/', '\\' or '..'), got {value!r}; set it under "
                f"scenarios.{run.scenario_name}.vars or environments.{run.environment_name}.vars"
            )
    if not _plain_file_name(run.scenario_name):
        raise ConfigError(
            f"scenario name {run.scenario_name!r} cannot name the script file: use a name "
            f"without '/', '\\' or '..'"
        )


def render_script(
    config: OrchConfig, run: ResolvedRun, out_dir: Path, policy: EgressPolicy | None = None
) -> RenderedScript:
    """Render `run`'s template into ``out_dir`` with the helper modules beside it (a mix:
    each flow's module, and the script that runs them as k6 scenarios).

    ``policy`` is the environment's allow-list (built here when not given): a script is
    never written without it.
    """
    if policy is None:
        policy = guard_run(config, run, "render a script")
    if run.script is not None:
        return adopt_script(Path(run.script), out_dir, policy)
    check_names(run)
    files: dict[str, str] = {}
    if run.flows:
        for flow in run.flows:
            check_names(flow)
            files[flow_module(flow)] = _render_template(config, flow, policy)
        files[f"{run.scenario_name}.js"] = mix_script(run, policy)
    else:
        files[f"{run.scenario_name}.js"] = _render_template(config, run, policy)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        helpers = out_dir / HELPERS_DIR_NAME
        if config.k6_scripts_dir.is_dir():
            if helpers.exists():
                shutil.rmtree(helpers)
            shutil.copytree(config.k6_scripts_dir, helpers)
        # LF endings everywhere: k6 in a Linux container reads the same bytes on Windows.
        for file_name, text in files.items():
            with open(out_dir / file_name, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
    except OSError as exc:
        raise SetupError(
            f"cannot write the rendered script to {out_dir}: {exc.strerror}; "
            f"choose a writable folder"
        ) from None
    return RenderedScript(directory=out_dir, script_name=f"{run.scenario_name}.js")


def adopt_script(script: Path, out_dir: Path, policy: EgressPolicy) -> RenderedScript:
    """A script of the user's, run where it is (its modules and data files beside it), a
    copy kept in ``out_dir`` for the record, and the allow-list as `k6 run` flags."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(script, out_dir / script.name)
    except OSError as exc:
        raise SetupError(
            f"cannot copy {script} into {out_dir}: {exc.strerror}; choose a writable folder"
        ) from None
    return RenderedScript(script.parent, script.name, protection_args(policy))


def protection_args(policy: EgressPolicy) -> tuple[str, ...]:
    """The allow-list as `k6 run` flags, which win over a script's own options."""
    options = policy.k6_options()
    args: list[str] = []
    if options.get("blacklistIPs"):
        args += ["--blacklist-ip", ",".join(options["blacklistIPs"])]
    if options.get("blockHostnames"):
        args += ["--block-hostnames", ",".join(options["blockHostnames"])]
    return tuple(args)


def flow_module(flow: ResolvedRun) -> str:
    """The file of a mix's flow module, beside the mix's script."""
    return f"{flow.flow_name}.flow.js"


def mix_options(run: ResolvedRun, policy: EgressPolicy | None = None) -> dict[str, Any]:
    """The ``options`` of a mix: one k6 scenario per flow (its profile, ``exec`` and
    ``flow`` tag), every flow's thresholds on its own samples, the allow-list."""
    blocked = policy.k6_options() if policy else {}
    return {
        **blocked,
        "scenarios": run.load_profile(),
        "thresholds": run.thresholds,
        "systemTags": _system_tags(run.thresholds),
        "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"],
    }


def mix_script(run: ResolvedRun, policy: EgressPolicy) -> str:
    """The script of a mix: it imports each flow's module and runs its default function
    as that flow's k6 scenario. Names are checked (flow names, module files); values are
    JSON literals."""
    lines = [
        f"// Rendered by orch: mix {run.scenario_name}, environment {run.environment_name}.",
        "// One k6 scenario per flow; each runs its scenario's own script (the modules beside).",
    ]
    for index, flow in enumerate(run.flows):
        lines.append(f"import flow{index} from {js_literal('./' + flow_module(flow))};")
    lines.append("")
    lines.append(f"export const options = {js_literal(mix_options(run, policy), indent=2)};")
    for index, flow in enumerate(run.flows):
        exec_name = flow.flow_options()["exec"]
        lines += ["", f"export function {exec_name}() {{", f"  flow{index}();", "}"]
    return "\n".join(lines) + "\n"


def _render_template(config: OrchConfig, run: ResolvedRun, policy: EgressPolicy) -> str:
    """One scenario's template rendered for ``run``, refused if a secret's value shows."""
    env = build_environment(config.templates_dir)
    name = run.scenario.template
    try:
        template = env.get_template(name)
        text = template.render(template_context(run, policy))
    except jinja2.TemplateNotFound:
        raise ConfigError(
            f"scenario {run.scenario_name!r}: template {name!r} not found in {config.templates_dir}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(
            f"template {name!r} uses an undefined variable: {exc.message}; define it under "
            f"scenarios.{run.scenario_name}.vars or environments.{run.environment_name}.vars"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"template {exc.filename or name}:{exc.lineno}: syntax error: {exc.message}"
        ) from None
    # A secret rendered into the script is a template bug; values under 8 characters are
    # too short to tell apart from ordinary script text. Values are written as JSON
    # literals, so look for the escaped form too.
    leaked = [
        k
        for k, v in run.secret_env.items()
        if len(v) >= 8 and (v in text or js_literal(v)[1:-1] in text)
    ]
    if leaked:
        raise ConfigError(
            f"template {name!r} would write the value of secret(s) {', '.join(leaked)} into "
            f"the script; read secrets from __ENV instead"
        )
    return text
