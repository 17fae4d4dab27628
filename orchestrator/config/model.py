"""Load and validate `orch.yaml` into typed models.

Every validation problem is reported as ``file: key.path: what is wrong``; unknown keys
are errors so that typos are caught. Values such as ``${STAGING_API_BASE_URL}`` are read
from the process environment only when the environment that uses them is selected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.config.database import DatabaseSettings
from orchestrator.config.egress import Production, parse_place, production_of
from orchestrator.config.endpoints import DEFAULT_ENRICHMENT_CANDIDATES, check_vars, parse_endpoint
from orchestrator.config.k6_options import (
    COMMON_EXECUTOR_OPTIONS,
    EXECUTOR_OPTIONS,
    K6OptionError,
    check_options,
)
from orchestrator.config.notifications import NotifyTarget
from orchestrator.config.outputs import K6Output, ResolvedOutput, check_outputs_list
from orchestrator.config.sandbox_settings import SandboxSettings
from orchestrator.core import DEFAULT_CONFIG, ConfigError

_Item = TypeVar("_Item")

# An orch.yaml is a few KB; reading stops past this, so a device or a huge file given as
# --config is an error instead of an unbounded read (/dev/full once took 24 GB).
CONFIG_LIMIT_BYTES = 4 * 1024 * 1024

EnvironmentKind = Literal["local", "staging", "production"]
RunnerName = Literal["auto", "native", "docker"]

DEFAULT_DOCKER_IMAGE = "grafana/k6:1.1.0"

ThresholdSpec = str | dict[str, Any]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_K6_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names k6 must get from orch alone: its own options (K6_*, which override the script's)
# and the run's variables (ORCH_BASE_URL, ORCH_EGRESS_RULE, …).
RESERVED_K6_PREFIXES = ("K6_", "ORCH_")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The load-delivery rule when orch.yaml says nothing (README, exit code 10).
DEFAULT_DELIVERY = {"min_achieved": 0.95, "max_dropped": 0.01}


class DeliveryRule(_Strict):
    """``delivery:`` on a scenario or a profile: when a run counts as having delivered the
    load it planned (else its outcome is ``load_not_delivered``, exit 10)."""

    min_achieved: float = Field(
        default=0.95, ge=0, le=1, description="least share of the planned iterations k6 made"
    )
    max_dropped: float = Field(
        default=0.01, ge=0, le=1, description="most share of the planned iterations k6 dropped"
    )


# `delivery: {...}`, `delivery: false` (not judged) or `true` (the default rule again)
DeliverySetting = DeliveryRule | bool | None


def check_delivery(value: Any) -> DeliverySetting:
    """A ``delivery:`` value as a setting, with one plain message when it is wrong."""
    if value is None or isinstance(value, bool | DeliveryRule):
        return value
    if not isinstance(value, dict):
        raise ValueError("write delivery: {min_achieved: 0.95, max_dropped: 0.01}, or false")
    try:
        return DeliveryRule.model_validate(value)
    except ValidationError as exc:
        raise ValueError(_one_line(exc)) from None


def delivery_rule(*settings: DeliverySetting) -> dict[str, Any] | None:
    """The rule a run is judged by, later settings over earlier ones (scenario, then
    profile): ``{"min_achieved", "max_dropped"}``, or None when delivery is not judged."""
    rule: dict[str, Any] | None = dict(DEFAULT_DELIVERY)
    for setting in settings:
        if setting is False:
            rule = None
        elif setting is True:
            rule = dict(DEFAULT_DELIVERY)
        elif isinstance(setting, DeliveryRule):
            rule = {**(rule or DEFAULT_DELIVERY), **setting.model_dump(exclude_unset=True)}
    return rule


class LoadProfile(BaseModel):
    """One k6 scenario's executor and options, written as k6 writes them, plus thresholds."""

    model_config = ConfigDict(extra="allow")

    description: str = ""
    executor: str
    thresholds: dict[str, list[ThresholdSpec]] = Field(default_factory=dict)
    delivery: DeliverySetting = None  # orch's, not k6's: see DeliveryRule

    _delivery = field_validator("delivery", mode="before")(check_delivery)

    @model_validator(mode="after")
    def _check_executor_options(self) -> LoadProfile:
        allowed = EXECUTOR_OPTIONS.get(self.executor)
        if allowed is None:
            raise ValueError(
                f"unknown executor {self.executor!r}; use one of {', '.join(EXECUTOR_OPTIONS)}"
            )
        unknown = set(self.k6_options()) - allowed - COMMON_EXECUTOR_OPTIONS - {"executor"}
        if unknown:
            accepted = ", ".join(sorted(allowed | COMMON_EXECUTOR_OPTIONS))
            raise ValueError(
                f"option(s) {', '.join(sorted(unknown))} are not valid for executor "
                f"{self.executor!r}; it takes {accepted}"
            )
        check_options(self.executor, self.k6_options())  # k6's types, durations, minimums
        return self

    def k6_options(self) -> dict[str, Any]:
        """The k6 scenario object: executor and its options, without orch's own keys."""
        extra = dict(self.__pydantic_extra__ or {})
        return {"executor": self.executor, **extra}


class Scenario(_Strict):
    """A named load test: a template, its variables, tags, thresholds and load profiles."""

    description: str = ""
    template: str
    tags: dict[str, str] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, list[ThresholdSpec]] = Field(default_factory=dict)
    delivery: DeliverySetting = None  # the load-delivery rule of every profile (DeliveryRule)
    profiles: dict[str, LoadProfile]
    default_profile: str

    _delivery = field_validator("delivery", mode="before")(check_delivery)

    @model_validator(mode="after")
    def _default_profile_exists(self) -> Scenario:
        if self.default_profile not in self.profiles:
            raise ValueError(
                f"default_profile {self.default_profile!r} is not among profiles "
                f"({', '.join(self.profiles) or 'none'})"
            )
        return self


# A flow's name is its k6 scenario's name (letters, digits, '_' and '-', as k6 takes them).
_FLOW_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Keys of a mix's flow that are orch's; the others are k6 scenario options over the profile.
FLOW_KEYS = ("scenario", "profile", "description")


class MixFlow(BaseModel):
    """One flow of a mix: a scenario with a profile, and k6 options over it (``rate``,
    ``executor``, ``startTime``, …)."""

    model_config = ConfigDict(extra="allow")

    scenario: str | None = Field(default=None, description="the scenario (default: the key)")
    profile: str | None = Field(default=None, description="its profile (default: its default)")
    description: str = ""

    def overrides(self) -> dict[str, Any]:
        """The k6 scenario options written on the flow, over its profile's."""
        return dict(self.__pydantic_extra__ or {})


class Mix(_Strict):
    """Several scenarios in one k6 run, each a flow with its own profile (orch run --mix)."""

    description: str = ""
    flows: dict[str, MixFlow] = Field(min_length=1)
    thresholds: dict[str, list[ThresholdSpec]] = Field(
        default_factory=dict, description="thresholds on the whole mix (every flow's load)"
    )
    delivery: DeliverySetting = None

    _delivery = field_validator("delivery", mode="before")(check_delivery)

    @field_validator("flows")
    @classmethod
    def _flow_names(cls, value: dict[str, MixFlow]) -> dict[str, MixFlow]:
        for name in value:
            if not _FLOW_NAME.match(name):
                raise ValueError(
                    f"flow name {name!r}: use letters, digits, '_' and '-' (it names a k6 "
                    "scenario and its flow tag)"
                )
        execs = [flow_exec_name(name) for name in value]
        if len(set(execs)) != len(execs):
            raise ValueError("two flow names differ only by '-' against '_'; rename one")
        return value


def flow_exec_name(flow: str) -> str:
    """The name of the function a flow's k6 scenario executes (``exec``)."""
    return "flow_" + re.sub(r"[^A-Za-z0-9_]", "_", flow)


def _check_places(values: list[str], what: str) -> list[str]:
    """Hosts, URLs, IPs or CIDRs (``${VAR}`` values are checked when they are read)."""
    for index, value in enumerate(values):
        if "${" not in value:
            try:
                parse_place(value, f"[{index}]")
            except ConfigError as exc:
                raise ValueError(f"{what}{exc}") from None
    return values


class AllowList(_Strict):
    """What an environment may reach besides the hosts of its own URLs."""

    hosts: list[str] = Field(
        default_factory=list, description="more host names (or URLs) this environment may reach"
    )
    networks: list[str] = Field(
        default_factory=list, description="addresses or CIDRs it may reach (e.g. a CDN's range)"
    )

    @field_validator("hosts", "networks")
    @classmethod
    def _places(cls, value: list[str]) -> list[str]:
        return _check_places(value, "")


class ProductionN8N(_Strict):
    """The production N8N, used with test workflows where no staging N8N exists."""

    host: str = Field(description="the production N8N host, e.g. n8n.srv997159.hstgr.cloud")
    webhook_paths: list[str] = Field(
        min_length=1,
        description="the exact webhook paths of the test workflows; {param} or :param matches "
        "one path segment",
    )
    max_requests_per_second: float | None = Field(
        default=None, gt=0, description="cap on the load sent to that host"
    )

    @field_validator("webhook_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/") or ".." in path or "//" in path or "*" in path:
                raise ValueError(
                    f"{path!r}: write an exact path starting with '/', without '..', '//' or '*'"
                )
        return value


class Environment(_Strict):
    """A target environment: where traffic goes and which secrets it needs."""

    kind: EnvironmentKind
    description: str = ""
    base_url: str
    n8n_base_url: str | None = None
    database_url: str | None = None
    supabase_url: str | None = Field(
        default=None, description="Supabase project URL, for the Auth admin API (test users)"
    )
    supabase_service_role_key: str | None = Field(
        default=None, description="name of the host environment variable holding the key"
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="k6 variable name -> name of the host environment variable holding it",
    )
    vars: dict[str, Any] = Field(default_factory=dict)
    runner: RunnerName | None = None
    docker_image: str = DEFAULT_DOCKER_IMAGE
    sandbox: dict[str, Any] | None = Field(
        default=None, description="settings of the embedded sandbox (local environments)"
    )
    scenarios: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-scenario overrides, merged over the scenario"
    )
    allow: AllowList = Field(default_factory=AllowList)
    production_n8n: ProductionN8N | None = None
    outputs: list[K6Output] = Field(
        default_factory=list,
        description="k6 outputs besides orch's raw CSV: Prometheus, InfluxDB, OpenTelemetry",
    )
    web_dashboard_export: bool = Field(
        default=False, description="keep k6's web-dashboard HTML report in the run folder"
    )
    notify: list[NotifyTarget] = Field(
        default_factory=list, description="Slack, Teams or webhook receivers of the verdict"
    )

    _outputs = field_validator("outputs")(check_outputs_list)

    @model_validator(mode="after")
    def _production_n8n_not_local(self) -> Environment:
        if self.production_n8n is not None and self.kind != "staging":
            raise ValueError("production_n8n: only a staging environment may use production N8N")
        return self

    @field_validator("sandbox")
    @classmethod
    def _sandbox_settings(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Check the sandbox's settings when the file is read, not when a run starts."""
        if value is None:
            return value
        try:
            SandboxSettings.model_validate(value)
        except ValidationError as exc:
            raise ValueError(_one_line(exc)) from None
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, str]) -> dict[str, str]:
        for k6_name, host_name in value.items():
            for name in (k6_name, host_name):
                if not _K6_NAME.match(name):
                    raise ValueError(f"{name!r} is not a valid environment variable name")
            if k6_name.upper().startswith(RESERVED_K6_PREFIXES):
                raise ValueError(
                    f"{k6_name!r}: k6 reads K6_* variables as its own options (they would "
                    "override the script's block lists) and ORCH_* are the run's own "
                    "variables; give the secret another name"
                )
        return value


class ProductionDeclaration(_Strict):
    """What is production, wherever it appears (besides every production environment's URLs)."""

    hosts: list[str] = Field(
        default_factory=list, description="host names (aliases included) or URLs of production"
    )
    addresses: list[str] = Field(
        default_factory=list, description="IP addresses or CIDRs of production"
    )
    shared_addresses: list[str] = Field(
        default_factory=list,
        description="addresses production shares with staging (a pooler, a CDN): names decide",
    )
    supabase_project_refs: list[str] = Field(
        default_factory=list, description="production's Supabase project refs"
    )

    @field_validator("hosts", "addresses", "shared_addresses")
    @classmethod
    def _places(cls, value: list[str]) -> list[str]:
        return _check_places(value, "")


TEST_TLDS = {"test", "example", "invalid", "localhost"}


def is_test_domain(domain: str) -> bool:
    """Whether a domain is reserved for tests (RFC 2606) or named ``test.…``."""
    labels = domain.lower().rstrip(".").split(".")
    return len(labels) >= 2 and (labels[0] == "test" or labels[-1] in TEST_TLDS)


class TestUserSettings(_Strict):
    """How test users are named: loadtest-user-{1..count}@domain (a test domain)."""

    domain: str = "test.sales-machine.com"
    count: int = Field(default=20, ge=1, le=10_000)

    @field_validator("domain")
    @classmethod
    def _test_domain(cls, value: str) -> str:
        if not is_test_domain(value):
            raise ValueError(
                f"{value!r} is not a test domain: use one whose first label is 'test' "
                f"or that ends in .test, .example or .invalid"
            )
        return value.lower()


class Defaults(_Strict):
    """Defaults for command-line options."""

    environment: str = "local"
    results_dir: str = "results"
    runner: RunnerName = "auto"


class ClaudeTier(_Strict):
    """One Claude API usage tier's limits (docs/claude-rate-limits.md); paces ai-enrichment."""

    description: str = ""
    requests_per_minute: int = Field(gt=0)
    input_tokens_per_minute: int = Field(gt=0)
    output_tokens_per_minute: int = Field(gt=0)


class VerifySettings(_Strict):
    """What `orch verify` reads and probes."""

    workflow_file: str | None = Field(
        default=None,
        description="replaced by each webhook scenario's vars.webhook_export",
    )
    enrichment_candidates: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENRICHMENT_CANDIDATES),
        description="enrichment endpoints to probe, in order, as 'METHOD /path'",
    )

    @field_validator("enrichment_candidates")
    @classmethod
    def _endpoint_specs(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_endpoint(spec)
        return value

    @field_validator("workflow_file")
    @classmethod
    def _moved(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "the N8N workflow export is named by each webhook scenario now: move it to "
                f"scenarios.<name>.vars.webhook_export: {value}, and remove verify.workflow_file"
            )
        return None


class RegressionSettings(_Strict):
    """When a run counts as regressed against a baseline (docs/ci.md, "Statistics")."""

    p95_increase_pct: float = Field(
        default=10.0, ge=0, description="p95 worse by over this many percent (with significance)"
    )
    p95_min_increase_ms: float = Field(
        default=1.0, ge=0, description="and by at least this many ms (ignores sub-ms noise)"
    )
    error_rate_increase_points: float = Field(
        default=0.5, ge=0, description="error rate up by more than this many percentage points"
    )
    alpha: float = Field(
        default=0.01, gt=0, lt=1, description="significance level of the one-sided tests"
    )


class OrchConfig(_Strict):
    """The whole validated `orch.yaml`."""

    defaults: Defaults = Field(default_factory=Defaults)
    environments: dict[str, Environment]
    scenarios: dict[str, Scenario]
    database: DatabaseSettings = Field(default_factory=lambda: DatabaseSettings())
    claude_tiers: dict[str, ClaudeTier] = Field(default_factory=dict)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    production: ProductionDeclaration = Field(default_factory=ProductionDeclaration)
    test_users: TestUserSettings = Field(default_factory=lambda: TestUserSettings())
    regression: RegressionSettings = Field(default_factory=RegressionSettings)
    mixes: dict[str, Mix] = Field(
        default_factory=dict, description="several scenarios in one k6 run (orch run --mix)"
    )

    # Set by the loader, not by the file.
    source: Path = Field(default=Path("orch.yaml"), exclude=True)

    @property
    def root(self) -> Path:
        """The folder that relative paths in the config are relative to."""
        return self.source.parent

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def k6_scripts_dir(self) -> Path:
        return self.root / "k6_scripts"

    @property
    def results_dir(self) -> Path:
        return self.root / self.defaults.results_dir

    @model_validator(mode="after")
    def _cross_references(self) -> OrchConfig:
        if self.defaults.environment not in self.environments:
            raise ValueError(
                f"defaults.environment {self.defaults.environment!r} is not a declared "
                f"environment ({', '.join(self.environments)})"
            )
        found: list[str] = []
        for env_name, env in self.environments.items():
            for scenario_name, override in env.scenarios.items():
                where = f"environments.{env_name}.scenarios.{scenario_name}"
                if scenario_name not in self.scenarios:
                    found.append(
                        f"{where}: no such scenario (declared: {', '.join(self.scenarios)})"
                    )
                    continue
                try:
                    merged_scenario(self.scenarios[scenario_name], override)
                except ValidationError as exc:
                    found += [f"{path}: {message}" for path, message in problems(exc, where)]
        if found:
            raise ValueError("\n  ".join(found))
        return self

    @model_validator(mode="after")
    def _mix_flows(self) -> OrchConfig:
        """Each flow names a scenario and one of its profiles, and its k6 options over that
        profile make a valid profile; a mix is not named like a scenario."""
        found: list[str] = []
        for mix_name, mix in self.mixes.items():
            if mix_name in self.scenarios:
                found.append(f"mixes.{mix_name}: a scenario has that name; rename the mix")
            for flow_name, flow in mix.flows.items():
                where = f"mixes.{mix_name}.flows.{flow_name}"
                scenario = self.scenarios.get(flow.scenario or flow_name)
                if scenario is None:
                    found.append(
                        f"{where}: no scenario {flow.scenario or flow_name!r} (declared: "
                        f"{', '.join(self.scenarios)}); set scenario: NAME"
                    )
                    continue
                profile = flow.profile or scenario.default_profile
                if profile not in scenario.profiles:
                    found.append(
                        f"{where}.profile: {profile!r} is not a profile of "
                        f"{flow.scenario or flow_name!r} ({', '.join(scenario.profiles)})"
                    )
                    continue
                try:
                    flow_profile(scenario.profiles[profile], flow)
                except ValidationError as exc:
                    found += [f"{path}: {message}" for path, message in problems(exc, where)]
        if found:
            raise ValueError("\n  ".join(found))
        return self

    def mix(self, name: str) -> Mix:
        """The named mix, or a ConfigError listing the declared ones."""
        return _named(self.mixes, "mix", name, self.source, "none declared (add mixes:)")

    def production_hosts(self) -> Production:
        """Everything this config declares as production (``${VAR}`` read now)."""
        return production_of(self)

    @model_validator(mode="after")
    def _scenario_vars(self) -> OrchConfig:
        """Endpoint variables are 'METHOD /path'; a claude_tier names a declared tier."""
        tiers = list(self.claude_tiers)
        problems = []
        for name, scenario in self.scenarios.items():
            problems += check_vars(scenario.vars, tiers, f"scenarios.{name}.vars")
        for env_name, env in self.environments.items():
            problems += check_vars(env.vars, tiers, f"environments.{env_name}.vars")
            for name, override in env.scenarios.items():
                where = f"environments.{env_name}.scenarios.{name}.vars"
                problems += check_vars(override.get("vars") or {}, tiers, where)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def environment(self, name: str) -> Environment:
        """The named environment, or a ConfigError listing the declared ones."""
        return _named(self.environments, "environment", name, self.source)

    def scenario(self, name: str) -> Scenario:
        """The named scenario, or a ConfigError listing the declared ones."""
        return _named(self.scenarios, "scenario", name, self.source)


def _named(
    declared: Mapping[str, _Item], kind: str, name: str, source: object, none: str = ""
) -> _Item:
    """``declared[name]``, or a ConfigError naming ``kind`` and listing the declared names."""
    try:
        return declared[name]
    except KeyError:
        raise ConfigError(
            f"unknown {kind} {name!r} in {source}; "
            f"choose one of: {', '.join(declared) or none}"
        ) from None


def flow_profile(profile: LoadProfile, flow: MixFlow) -> LoadProfile:
    """A flow's profile: the named profile with the flow's k6 options over it (another
    executor replaces the profile's options instead)."""
    overrides = flow.overrides()
    if not overrides:
        return profile
    base = profile.model_dump()
    if overrides.get("executor", base["executor"]) != base["executor"]:
        base = {k: base[k] for k in ("description", "thresholds", "delivery", "startTime")
                if k in base}
    return LoadProfile.model_validate({**base, **overrides})


class ResolvedRun(BaseModel):
    """One scenario, one environment, one profile: everything rendering and running need.

    A mix is a run whose ``flows`` are the resolved runs of its flows (``flow_name`` set
    on each); its own ``profile`` is its first flow's and stands for none of them: use
    :meth:`load_profile`.
    """

    scenario_name: str
    environment_name: str
    profile_name: str
    scenario: Scenario
    environment: Environment
    profile: LoadProfile
    base_url: str
    n8n_base_url: str
    vars: dict[str, Any]
    thresholds: dict[str, list[ThresholdSpec]]
    secret_env: dict[str, str] = Field(repr=False)  # k6 name -> value; never written anywhere
    outputs: list[ResolvedOutput] = Field(default_factory=list, repr=False)  # k6's own outputs
    flows: list[ResolvedRun] = Field(default_factory=list)  # a mix's flows, else none
    flow_name: str | None = None  # set on each flow of a mix
    script: str | None = None  # a k6 script of the user's (orch run path.js), run as it is
    script_scenarios: dict[str, Any] = Field(default_factory=dict)  # its k6 scenarios

    @property
    def is_mix(self) -> bool:
        return bool(self.flows)

    def flow_options(self) -> dict[str, Any]:
        """A flow's k6 scenario: its profile, the function it runs, its ``flow`` tag."""
        assert self.flow_name is not None
        options = self.profile.k6_options()
        tags = {**self.scenario.tags, **(options.get("tags") or {}), "flow": self.flow_name}
        return {**options, "exec": flow_exec_name(self.flow_name), "tags": tags}

    def load_profile(self) -> dict[str, Any]:
        """What k6 runs: one scenario's options, or a mix's k6 scenarios by flow name (a
        script's: its own)."""
        if self.script is not None:
            return dict(self.script_scenarios)
        if self.flows:
            return {flow.flow_name or "": flow.flow_options() for flow in self.flows}
        return self.profile.k6_options()

    def secret_values(self) -> list[str]:
        """Every secret value of this run (the k6 secrets and the outputs'), for redaction."""
        return [*self.secret_env.values(), *(v for o in self.outputs for v in o.secret_values)]

    def delivery_rule(self) -> dict[str, Any] | None:
        """The load-delivery rule of this run (the profile's over the scenario's), or None
        when the run opted out."""
        return delivery_rule(self.scenario.delivery, self.profile.delivery)

    def public_summary(self) -> dict[str, Any]:
        """The resolved configuration with secrets named but not shown."""
        if self.script is not None:
            return {
                "script": self.script,
                "environment": self.environment_name,
                "environment_kind": self.environment.kind,
                "base_url": self.base_url,
                "n8n_base_url": self.n8n_base_url,
                "load_profile": self.load_profile(),
                "thresholds": self.thresholds,
                "secrets": {name: "***" for name in self.secret_env},
            }
        if self.flows:
            return {
                "mix": self.scenario_name,
                "description": self.scenario.description,
                "environment": self.environment_name,
                "environment_kind": self.environment.kind,
                "base_url": self.base_url,
                "n8n_base_url": self.n8n_base_url,
                "load_profile": self.load_profile(),
                "thresholds": self.thresholds,
                "secrets": {name: "***" for name in self.secret_env},
                "flows": {f.flow_name: f.public_summary() for f in self.flows},
            }
        return {
            "scenario": self.scenario_name,
            "environment": self.environment_name,
            "environment_kind": self.environment.kind,
            "profile": self.profile_name,
            "template": self.scenario.template,
            "base_url": self.base_url,
            "n8n_base_url": self.n8n_base_url,
            "tags": self.scenario.tags,
            "vars": self.vars,
            "load_profile": self.profile.k6_options(),
            "thresholds": self.thresholds,
            "secrets": {name: "***" for name in self.secret_env},
            **({"outputs": [o.describe() for o in self.outputs]} if self.outputs else {}),
        }


def config_path(explicit: str | Path | None) -> Path:
    """The config file to use: the option, then ORCH_CONFIG, then ./orch.yaml, then orch's own."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("ORCH_CONFIG")
    if from_env:
        return Path(from_env)
    local = Path.cwd() / "orch.yaml"
    return local if local.is_file() else DEFAULT_CONFIG


def _read_config_text(source: Path) -> str:
    """The config file's text, read to at most CONFIG_LIMIT_BYTES (ConfigError beyond)."""
    with source.open("rb") as handle:
        data = handle.read(CONFIG_LIMIT_BYTES + 1)
    if len(data) > CONFIG_LIMIT_BYTES:
        raise ConfigError(
            f"{source} is larger than {CONFIG_LIMIT_BYTES // (1024 * 1024)} MiB, which no "
            "orch.yaml is; pass the YAML config with --config FILE"
        )
    return data.decode("utf-8")


def load_config(path: str | Path | None = None) -> OrchConfig:
    """Read and validate the config file, raising ConfigError with every problem found."""
    source = config_path(path)
    try:
        text = _read_config_text(source)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {source} does not exist; pass --config FILE or set ORCH_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source} is not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); pass the YAML config with --config FILE"
        ) from None
    try:
        data = read_yaml(text, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise ConfigError(f"{where}: malformed YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping with 'environments' and 'scenarios'"
        )
    try:
        config = OrchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
    config.source = source.resolve()
    return config


# YAML aliases may repeat at most this many values in all (``<<: *defaults`` and the like
# need a few hundred); past it the file is refused before any value is built, so an alias
# bomb ("billion laughs") costs milliseconds, not gigabytes.
MAX_ALIAS_EXPANSION = 10_000
# Deeper nesting than this is refused (PyYAML composes recursively).
MAX_YAML_DEPTH = 200


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that measures what aliases expand to before building any value."""

    def compose_document(self) -> yaml.Node | None:
        node: yaml.Node | None = super().compose_document()
        if node is not None:
            _check_expansion(node, str(self.name))
        return node


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a node graph whose aliases repeat more than MAX_ALIAS_EXPANSION values, or
    that refers to itself (the values would be infinite)."""
    expanded: dict[int, int] = {}  # id(node) -> values in it once aliases are expanded
    distinct: set[int] = set()
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in children)
            if expanded[key] - len(distinct) > MAX_ALIAS_EXPANSION:
                raise ConfigError(
                    f"{source}: YAML anchors and aliases (&name, *name) expand to more than "
                    f"{MAX_ALIAS_EXPANSION:,} repeated values; write the values out, or use "
                    "fewer aliases"
                )
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise ConfigError(f"{source}: a YAML alias refers to a value that contains it")
        if len(on_path) >= MAX_YAML_DEPTH:
            raise ConfigError(f"{source}: YAML nested more than {MAX_YAML_DEPTH} levels deep")
        distinct.add(key)
        on_path.add(key)
        stack.append((node, True))
        stack += [(c, False) for c in children if id(c) not in expanded]


def read_yaml(text: str, source: Path | str) -> Any:
    """YAML text as Python values (safe types only), with alias expansion bounded."""
    loader = _BoundedLoader(text)
    loader.name = str(source)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply to read") from None
    finally:
        loader.dispose()


def problems(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(key path, what is wrong) for each of pydantic's errors, in plain words."""
    found = []
    for error in exc.errors():
        path = ".".join([p for p in [prefix] if p] + [str(part) for part in error["loc"]])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, K6OptionError):  # one line per option, named by its key
            found += [(f"{path}.{key}", problem) for key, problem in cause.problems]
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif error["type"] == "missing":
            message = "required key is missing"
        found.append((path, message))
    return found


def _one_line(exc: ValidationError) -> str:
    """A nested model's problems as one ``key: what`` sentence (a rule between two keys
    has no key of its own, so it stands alone)."""
    return "; ".join(f"{path}: {message}" if path else message for path, message in problems(exc))


def _format_validation_error(source: Path, exc: ValidationError) -> str:
    """One `file: key.path: problem` line per error."""
    lines = []
    for path, message in problems(exc):
        # model-level checks name their own key path in the message
        lines.append(f"{source}: {path}: {message}" if path else f"{source}: {message}")
    count = len(lines)
    head = (
        f"{count} problem{'s' if count > 1 else ''} in the configuration:\n  " if count > 1 else ""
    )
    return head + "\n  ".join(lines)


def expand_env_refs(value: str, where: str) -> str:
    """Replace ``${VAR}`` with the variable's value, or fail naming the variable."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None or found == "":
            raise ConfigError(
                f"{where} needs the environment variable {name}; set it "
                f"(or put it in a git-ignored .env file)"
            )
        return found

    return _ENV_REF.sub(replace, value)


def env_refs(value: str | None) -> list[str]:
    """Names of the variables a value refers to with ``${VAR}``."""
    return _ENV_REF.findall(value or "")


def merged_scenario(base: Scenario, override: dict[str, Any]) -> Scenario:
    """A scenario with an environment's override merged over it (ValidationError if the
    result is not a valid scenario)."""
    return Scenario.model_validate(deep_merge(base.model_dump(exclude_defaults=False), override))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
