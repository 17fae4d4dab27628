"""Render a scenario's Jinja2 template into a k6 script folder.

The folder holds the script and a copy of the shared helper modules (`k6_scripts/`) that it
imports, so it runs anywhere as it is (natively, in a container, on a cluster). Secrets are
never rendered: the script reads them from ``__ENV`` at run time.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from orchestrator.config import OrchConfig, ResolvedRun
from orchestrator.errors import ConfigError, SetupError
from orchestrator.guard import ProductionHosts

HELPERS_DIR_NAME = "k6_scripts"

# Environment variables through which the script learns its targets (so a Docker runner can
# rewrite loopback URLs); the rendered defaults let the script run under a plain `k6 run`.
BASE_URL_VAR = "ORCH_BASE_URL"
N8N_BASE_URL_VAR = "ORCH_N8N_BASE_URL"


@dataclass(frozen=True)
class RenderedScript:
    """A rendered script folder."""

    directory: Path
    script_name: str

    @property
    def path(self) -> Path:
        return self.directory / self.script_name


def build_environment(templates_dir: Path) -> jinja2.Environment:
    """The one Jinja environment: strict undefined, no autoescape (the output is JS)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = lambda value: json.dumps(value, indent=2, sort_keys=False)
    return env


def k6_options(run: ResolvedRun, production: ProductionHosts | None = None) -> dict[str, Any]:
    """The `options` object the script exports: one k6 scenario, thresholds, tags, and
    k6's own block of every production host (defence in depth behind the guard)."""
    scenario_options = run.profile.k6_options()
    blocked = production.k6_block_options() if production else {}
    return {
        **blocked,
        "scenarios": {run.scenario_name.replace("-", "_"): scenario_options},
        "thresholds": run.thresholds,
        # Tags go on every metric sample (and so into every raw line): keep them few.
        "tags": dict(run.scenario.tags),
        "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"],
    }


def template_context(run: ResolvedRun, production: ProductionHosts | None = None) -> dict[str, Any]:
    """Variables a scenario template sees (never secret values)."""
    return {
        "scenario": run.scenario_name,
        "environment": run.environment_name,
        "environment_kind": run.environment.kind,
        "profile": run.profile_name,
        "options": k6_options(run, production),
        "base_url": run.base_url,
        "n8n_base_url": run.n8n_base_url,
        "base_url_var": BASE_URL_VAR,
        "n8n_base_url_var": N8N_BASE_URL_VAR,
        "secret_names": sorted(run.secret_env),
        "vars": run.vars,
        **run.vars,
    }


def render_script(config: OrchConfig, run: ResolvedRun, out_dir: Path) -> RenderedScript:
    """Render `run`'s template into ``out_dir`` with the helper modules beside it."""
    env = build_environment(config.templates_dir)
    name = run.scenario.template
    try:
        template = env.get_template(name)
        text = template.render(template_context(run, config.production_hosts()))
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
    # too short to tell apart from ordinary script text.
    leaked = [k for k, v in run.secret_env.items() if len(v) >= 8 and v in text]
    if leaked:
        raise ConfigError(
            f"template {name!r} would write the value of secret(s) {', '.join(leaked)} into "
            f"the script; read secrets from __ENV instead"
        )
    script_name = f"{run.scenario_name}.js"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        helpers = out_dir / HELPERS_DIR_NAME
        if config.k6_scripts_dir.is_dir():
            if helpers.exists():
                shutil.rmtree(helpers)
            shutil.copytree(config.k6_scripts_dir, helpers)
        # LF endings everywhere: k6 in a Linux container reads the same bytes on Windows.
        with open(out_dir / script_name, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise SetupError(
            f"cannot write the rendered script to {out_dir}: {exc.strerror}; "
            f"choose a writable folder"
        ) from None
    return RenderedScript(directory=out_dir, script_name=script_name)
