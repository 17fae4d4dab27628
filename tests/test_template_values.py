"""Values enter k6 scripts only as data.

Every variable a shipped template uses (and the scenario, environment and profile names) is
rendered once with a plain sentinel and once with each hostile value: the hostile script
must be the sentinel script with the sentinel's JSON literal swapped for the hostile one's,
its exported options must be unchanged, and the real k6 must still compile it to the same
options. No value can end a string, a template literal or a comment, or rewrite the
``options`` that keep traffic off production (``blacklistIPs``, ``blockHostnames``).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from jinja2 import meta
from scenario_project import make_project, shipped_config

from orchestrator.config import load_config, resolve_run
from orchestrator.core import TEMPLATES_DIR, ConfigError, OrchError
from orchestrator.execution import find_k6
from orchestrator.execution.render import build_environment, render_script, template_context

ENVIRONMENT = "local"
PROFILE = "smoke"
PORT = 18765  # no request is sent: k6 only compiles the scripts
SENTINEL = "orchSentinel"

# Each tries to end what surrounds a value: a template literal, ${…} interpolation, a
# string, a block or line comment, a Jinja expression, an HTML script element, or the
# options object itself (to switch off the production block).
HOSTILE = [
    "`",
    "${globalThis.x=1}",
    "'",
    '"',
    "*/",
    "/*",
    "\n",
    "\u2028",
    "</script>",
    "\\",
    "{{ 7*7 }}",
    '"}, blacklistIPs: [], blockHostnames: [], x: {"',
    "`}; options.blacklistIPs = []; options.blockHostnames = []; //",
    "0; options.blacklistIPs = []; //",
    "'\n*/ export const options = {}; /*",
    # without spaces, so that an endpoint ("METHOD /path") may carry them too
    '"},blacklistIPs:[],blockHostnames:[],x:{"',
    "`;options.blacklistIPs=[];options.blockHostnames=[];//",
]

# Variables the pacing step computes when a Claude tier is set; the test sets them itself.
PACING_VARS = {"claude_tier_limits", "claude_rate_cap_per_minute", "pace_iteration_s"}
NAMES = ("<scenario name>", "<environment name>", "<profile name>")
URL_VARS = ("base_url", "n8n_base_url")
DATA_FOLDER = "./k6_scripts/data/"


def json_literal(value: Any) -> str:
    """The literal the spec asks for: ASCII JSON with <, >, & (and U+2028/9) as \\uXXXX."""
    text = json.dumps(value, ensure_ascii=True)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def template_variables(template: str) -> list[str]:
    """Every variable `template` reads: Jinja names and ``vars.get('…')`` keys."""
    source = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    env = build_environment(TEMPLATES_DIR)
    names = set(meta.find_undeclared_variables(env.parse(source)))
    names |= set(re.findall(r"vars\.get\('([A-Za-z_]+)'", source))
    return sorted(names)


SCENARIO_TEMPLATES = {
    name: scenario["template"]
    for name, scenario in shipped_config()["scenarios"].items()
    if scenario["template"].endswith(".js.j2")
}
# Names orch puts in the context besides the run's vars, whose values are not under test
# here: the names (tested as NAMES), the options object (compared whole), constants.
ORCH_CONTEXT = {
    "scenario",
    "environment",
    "environment_kind",
    "profile",
    "options",
    "base_url_var",
    "n8n_base_url_var",
    "secret_names",
    "vars",
}


def cases() -> list[tuple[str, str]]:
    """(scenario, variable) for every variable of every shipped k6 template, and the names."""
    found = []
    for scenario, template in SCENARIO_TEMPLATES.items():
        variables = [v for v in template_variables(template) if v not in ORCH_CONTEXT]
        found += [(scenario, v) for v in [*variables, *NAMES]]
    return found


def sentinel_for(variable: str) -> str:
    return with_form(variable, SENTINEL)


def with_form(variable: str, value: str) -> str:
    """A value in the form the variable must have to be accepted at all."""
    if variable.endswith("_endpoint"):
        return "POST /" + value
    if variable == "webhook_path":  # a URL path, overriding the one derived from the export
        return "/" + value
    if variable in URL_VARS:
        return f"http://127.0.0.1:{PORT}/" + value
    return value


def literal(variable: str, value: Any) -> str:
    """The JSON literal the value must appear as: a data file as its whole path."""
    if variable.endswith("_file"):
        return json_literal(DATA_FOLDER + value)
    return json_literal(value)


def expected_refusal(variable: str, value: str) -> str | None:
    """Text the ConfigError must name when orch refuses the value before rendering."""
    if (variable.endswith("_file") or variable == "<scenario name>") and any(
        part in value for part in ("/", "\\", "..")
    ):
        return variable if variable.endswith("_file") else "scenario name"
    if variable.endswith("_endpoint") and not re.fullmatch(r"POST /\S*", value.strip()):
        return variable
    if variable == "webhook_path" and not re.fullmatch(r"/[^\s?#]*", value):
        return variable
    return None


@dataclass
class Rendered:
    text: str
    path: Path
    secrets: dict[str, str]


@dataclass
class Project:
    """A temporary project with the repository's orch.yaml cut down to one scenario."""

    root: Path
    scenario: str
    data: dict[str, Any]


def project_for(root: Path, scenario: str) -> Project:
    def keep_one(data: dict[str, Any]) -> None:
        data["scenarios"] = {scenario: data["scenarios"][scenario]}
        for env in data["environments"].values():
            own = env.get("scenarios") or {}
            env["scenarios"] = {scenario: own[scenario]} if scenario in own else {}

    config = make_project(root, keep_one, port=PORT)
    return Project(root, scenario, yaml.safe_load(config.read_text(encoding="utf-8")))


def render(project: Project, variable: str, value: str, label: str) -> Rendered:
    """Render the project's scenario with `variable` set to `value`, through orch's public
    functions (its own orch-LABEL.yaml in the project folder, its own script folder)."""
    data = copy.deepcopy(project.data)
    scenario = project.scenario
    names = {"<scenario name>": scenario, "<environment name>": ENVIRONMENT}
    names["<profile name>"] = PROFILE
    if variable in names:
        names[variable] = value
    environments = data["environments"]
    local = environments[ENVIRONMENT]
    spec = data["scenarios"][scenario]
    override = local["scenarios"].setdefault(scenario, {}).setdefault("vars", {})
    if variable in PACING_VARS:  # set by the test here, not computed from a Claude tier
        spec["vars"].pop("claude_tier", None)
        override.pop("claude_tier", None)
    if variable in URL_VARS:
        local[variable] = value
    elif variable not in names:
        override[variable] = value  # the most specific place: nothing overrides it
    spec["profiles"][names["<profile name>"]] = spec["profiles"].pop(PROFILE)
    spec["default_profile"] = names["<profile name>"]
    data["scenarios"] = {names["<scenario name>"]: spec}
    for env in environments.values():
        if scenario in env["scenarios"]:
            env["scenarios"] = {names["<scenario name>"]: env["scenarios"][scenario]}
    environments[names["<environment name>"]] = environments.pop(ENVIRONMENT)
    data["defaults"]["environment"] = names["<environment name>"]
    path = project.root / f"orch-{label}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    config = load_config(path)
    run = resolve_run(config, names["<scenario name>"], names["<environment name>"])
    rendered = render_script(config, run, project.root / "scripts" / label)
    if variable.endswith("_file"):  # the data file the value names, for k6 to open
        folder = rendered.directory / "k6_scripts" / "data"
        shipped = project.data["scenarios"][scenario]["vars"][variable]
        shutil.copyfile(folder / shipped, folder / value)
    return Rendered(rendered.path.read_text(encoding="utf-8"), rendered.path, run.secret_env)


def exported_options(text: str) -> dict[str, Any]:
    """The JSON object after the one line-opening ``export const options = `` (then ``;``)."""
    (found,) = re.finditer(r"^export const options = ", text, re.MULTILINE)
    start = found.end()
    options, end = json.JSONDecoder().raw_decode(text, start)
    assert text[end] == ";"
    assert isinstance(options, dict)
    return options


def renamed_scenario(options: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """`options` with its one k6 scenario under the name `new` instead of `old`."""
    renamed = dict(options)
    scenarios = dict(renamed["scenarios"])
    scenarios[new.replace("-", "_")] = scenarios.pop(old.replace("-", "_"))
    renamed["scenarios"] = scenarios
    return renamed


@dataclass
class Inspected:
    options: dict[str, Any] | None
    error: str


def k6_inspect(rendered: Rendered) -> Inspected:
    """Compile and initialise the script with the real k6; its options, or why it failed."""
    args = [str(find_k6().path), "inspect"]
    for name, value in rendered.secrets.items():
        args += ["-e", f"{name}={value}"]
    done = subprocess.run(
        [*args, rendered.path.name],
        cwd=rendered.path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        return Inspected(json.loads(done.stdout), "")
    return Inspected(None, done.stdout + done.stderr)


def failure_prefix(error: str, value: str) -> str:
    """What k6 said before naming the value, e.g. ``GoError: unknown auth mode ``."""
    match = re.search(r'msg="([^"]*)', error)
    assert match, error
    message = match.group(1)
    assert value in message, error
    return message[: message.index(value)]


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "variable"), cases())
def test_a_value_reaches_the_script_only_as_a_json_literal(
    tmp_path: Path, scenario: str, variable: str
) -> None:
    project = project_for(tmp_path, scenario)
    sentinel_value = sentinel_for(variable)
    sentinel = render(project, variable, sentinel_value, "sentinel")
    sentinel_literal = literal(variable, sentinel_value)
    # the sentinel is in the script, and only as whole JSON literals
    assert sentinel.text.count(sentinel_literal) >= 1, (variable, sentinel.text)
    assert sentinel.text.count(SENTINEL) == sentinel.text.count(sentinel_literal), variable
    options = exported_options(sentinel.text)
    assert options["blacklistIPs"], options  # the production block is there to protect
    assert options["blockHostnames"], options
    sentinel_k6 = k6_inspect(sentinel)
    assert "SyntaxError" not in sentinel_k6.error, sentinel_k6.error

    compiled: list[tuple[str, str, Rendered]] = []
    for index, raw in enumerate(HOSTILE):
        value = with_form(variable, raw)
        where = f"{scenario}: {variable}={value!r}"
        refusal = expected_refusal(variable, value)
        if refusal is not None:
            with pytest.raises(ConfigError) as refused:
                render(project, variable, value, str(index))
            assert refusal in refused.value.message, (where, refused.value.message)
            continue
        try:
            hostile = render(project, variable, value, str(index))
        except OrchError as exc:  # a base URL the guard will not accept is refused: fine
            assert variable in URL_VARS, (where, exc.message)
            continue
        rendered_value = value.rstrip("/") if variable in URL_VARS else value
        expected = sentinel.text.replace(sentinel_literal, literal(variable, rendered_value))
        assert hostile.text == expected, where

        wanted = options
        if variable == "<scenario name>":
            wanted = renamed_scenario(options, sentinel_value, value)
        assert exported_options(hostile.text) == wanted, where
        compiled.append((where, value, hostile))

    # the real k6 compiles and initialises each hostile script (two at a time)
    with ThreadPoolExecutor(max_workers=2) as pool:
        inspected = list(pool.map(k6_inspect, [hostile for _, _, hostile in compiled]))
    for (where, value, _), hostile_k6 in zip(compiled, inspected, strict=True):
        if sentinel_k6.options is not None:
            assert hostile_k6.options is not None, (where, hostile_k6.error)
            wanted_k6 = sentinel_k6.options
            if variable == "<scenario name>":
                wanted_k6 = renamed_scenario(wanted_k6, sentinel_value, value)
            assert hostile_k6.options == wanted_k6, where
        else:
            # the sentinel stops in the script's own check of the value (an unknown auth
            # mode, a missing secret): the hostile value stops there too, as data
            assert hostile_k6.options is None, where
            assert "SyntaxError" not in hostile_k6.error, (where, hostile_k6.error)
            prefix = failure_prefix(sentinel_k6.error, sentinel_value)
            assert prefix and prefix in hostile_k6.error, (where, prefix, hostile_k6.error)


def test_every_shipped_template_and_variable_is_covered() -> None:
    assert set(SCENARIO_TEMPLATES) == {"linkedin-scrape", "email-queue", "ai-enrichment"}
    covered = {variable for _, variable in cases()}
    assert {"webhook_path", "profiles_file", "campaign_prefix"} <= covered
    assert {"recipient_domain", "emails_per_request", "status_every", "base_url"} <= covered


@pytest.mark.parametrize(
    "value", ["../../etc/passwd", "/etc/passwd", "data\\prospects.json", "..", ""]
)
def test_a_data_file_outside_the_data_folder_is_refused(
    tmp_path: Path, project: Callable[..., Path], value: str
) -> None:
    config = project(extra_yaml="")
    text = config.read_text().replace(
        "profiles_file: linkedin-profiles.json", f"profiles_file: {json.dumps(value)}", 1
    )
    config.write_text(text)
    loaded = load_config(config)
    run = resolve_run(loaded, "linkedin-scrape")
    with pytest.raises(ConfigError, match="profiles_file"):
        render_script(loaded, run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_expression_is_a_json_literal_and_tojson_is_not_encoded_twice(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.j2").write_text(
        "a={{ s }} b={{ n }} c={{ none }} d={{ obj }} e={{ obj | tojson }} f={{ s ~ '' }}"
    )
    env = build_environment(tmp_path)
    text = env.get_template("t.j2").render(s="</script>`\u2028", n=5, none=None, obj={"k": ["<&>"]})
    assert text == (
        'a="\\u003c/script\\u003e`\\u2028" b=5 c=null d={"k": ["\\u003c\\u0026\\u003e"]} '
        'e={\n  "k": [\n    "\\u003c\\u0026\\u003e"\n  ]\n} f="\\u003c/script\\u003e`\\u2028"'
    )
    # nothing in a template can paste a value raw
    (tmp_path / "raw.j2").write_text("{{ s | safe }}")
    with pytest.raises(jinja2.TemplateAssertionError):
        env.get_template("raw.j2")


def test_the_context_names_are_what_the_test_treats_as_orch_s_own(tmp_path: Path) -> None:
    """ORCH_CONTEXT above lists exactly the names orch adds besides the run's vars."""
    config = load_config(make_project(tmp_path, port=PORT))
    run = resolve_run(config, "email-queue", ENVIRONMENT)
    context = template_context(run)
    assert set(context) - set(run.vars) == ORCH_CONTEXT | set(URL_VARS)


def test_scripts_record_the_system_tags_the_report_and_thresholds_read(tmp_path: Path) -> None:
    """orch's scripts ask k6 only for the tags the report reads (each is written on every
    sample), plus a system tag a threshold filters on; custom tags are not system tags."""

    def edit(data: dict[str, Any]) -> None:
        data["scenarios"]["email-queue"]["thresholds"].update(
            {"http_req_duration{url:http://127.0.0.1/x,flow:a}": ["p(95)<900"],
             "http_reqs{vu:1}": ["count>=0"]}
        )  # fmt: skip

    plain = resolve_run(load_config(make_project(tmp_path / "a", port=PORT)), "email-queue",
                        ENVIRONMENT)  # fmt: skip
    reads = ["check", "error", "error_code", "expected_response", "group", "method", "name",
             "scenario", "status"]  # fmt: skip
    assert template_context(plain)["options"]["systemTags"] == reads
    filtered = resolve_run(load_config(make_project(tmp_path / "b", edit, port=PORT)),
                           "email-queue", ENVIRONMENT)  # fmt: skip
    assert template_context(filtered)["options"]["systemTags"] == sorted([*reads, "url", "vu"])
