"""Mixes (``mixes:`` in orch.yaml, ``orch run --mix NAME``): several scenarios in one k6 run,
each flow with its own profile, thresholds on its own samples, a report section per flow,
and compare, baseline, history, shards and the k6-operator manifests for the mix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from scenario_project import make_project, shipped_config

from orchestrator.cli import main
from orchestrator.config import flow_metric_key, load_config, resolve_mix
from orchestrator.core import ConfigError, ExitCode, RefusedError
from orchestrator.execution import RunRequest, run_scenario

MIX = "peak-hour"
FLOWS = ["linkedin-scrape", "email-queue", "ai-enrichment"]


def short_mix(data: dict[str, Any]) -> None:
    """The shipped peak-hour mix, a few seconds long (flows still start one after another)."""
    flows = data["mixes"][MIX]["flows"]
    flows["linkedin-scrape"]["duration"] = "3s"
    flows["email-queue"].update(startTime="1s", duration="2s")
    flows["ai-enrichment"].update(startTime="1s", duration="2s")


def orch(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--config", str(config)])
    return result.exit_code, result.stdout, result.output


def write_config(tmp_path: Path, edit: Any) -> Path:
    data = shipped_config()
    edit(data)
    path = tmp_path / "orch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- configuration and resolution (no k6) ------------------------------------------------


def test_the_shipped_config_has_the_peak_hour_mix_of_the_three_flows() -> None:
    config = load_config(None)
    assert list(config.mix(MIX).flows) == FLOWS


def test_each_flow_keeps_its_own_thresholds_on_its_own_samples() -> None:
    config = load_config(None)
    run = resolve_mix(config, MIX)
    assert [f.flow_name for f in run.flows] == FLOWS
    for flow in run.flows:
        for key, expressions in flow.thresholds.items():
            assert run.thresholds[flow_metric_key(key, flow.flow_name or "")] == expressions
    assert run.thresholds["http_req_duration{name:linkedin_webhook,flow:linkedin-scrape}"] == [
        "p(95)<500"
    ]
    # the mix's own thresholds are on the whole run
    assert run.thresholds["http_req_failed"] == ["rate<0.01"]
    scenarios = run.load_profile()
    assert list(scenarios) == FLOWS
    assert scenarios["email-queue"]["startTime"] == "2s"
    assert scenarios["email-queue"]["exec"] == "flow_email_queue"
    assert scenarios["ai-enrichment"]["tags"]["flow"] == "ai-enrichment"


def test_flow_metric_key_adds_the_flow_tag() -> None:
    assert flow_metric_key("checks", "a") == "checks{flow:a}"
    assert flow_metric_key("http_req_duration{name:x}", "a") == "http_req_duration{name:x,flow:a}"
    assert flow_metric_key("m{flow:b}", "a") == "m{flow:b}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m["flows"].update({"nope": {"profile": "smoke"}}),
            "mixes.peak-hour.flows.nope: no scenario 'nope'",
        ),
        (
            lambda m: m["flows"]["email-queue"].update(profile="huge"),
            "mixes.peak-hour.flows.email-queue.profile: 'huge' is not a profile",
        ),
        (
            lambda m: m["flows"]["email-queue"].update(rate=-3),
            "mixes.peak-hour.flows.email-queue.rate",
        ),
        (lambda m: m["flows"].update({"bad name": {}}), "flow name 'bad name'"),
    ],
)
def test_a_wrong_mix_is_an_error_naming_where(tmp_path: Path, edit: Any, message: str) -> None:
    path = write_config(tmp_path, lambda d: edit(d["mixes"][MIX]))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in caught.value.message


def test_a_mix_named_like_a_scenario_is_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, lambda d: d["mixes"].update({"email-queue": d["mixes"][MIX]})
    )
    with pytest.raises(ConfigError, match=r"mixes\.email-queue: a scenario has that name"):
        load_config(path)


def test_an_unknown_mix_lists_the_declared_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown mix 'nope'.*peak-hour"):
        resolve_mix(load_config(None), "nope")


def test_flows_sharing_a_claude_tier_share_its_rate(tmp_path: Path) -> None:
    def two_enrichments(data: dict[str, Any]) -> None:
        data["mixes"]["twice"] = {
            "flows": {
                "enrich-a": {"scenario": "ai-enrichment", "rate": 500, "timeUnit": "1m"},
                "enrich-b": {"scenario": "ai-enrichment", "rate": 500, "timeUnit": "1m"},
            }
        }

    config = load_config(write_config(tmp_path, two_enrichments))
    run = resolve_mix(config, "twice")
    caps = [f.vars["claude_rate_cap_per_minute"] for f in run.flows]
    # the sandbox tier allows 3000/minute at 90 % headroom: 2700, halved for each of two
    assert caps == [1350, 1350]


def test_a_mix_in_production_is_refused_before_anything_runs(tmp_path: Path) -> None:
    config = load_config(None)
    with pytest.raises(RefusedError, match="kind production"):
        run_scenario(config, RunRequest(mix=MIX, environment="production"), echo=print)


def test_a_mix_takes_no_scenario_or_profile() -> None:
    config = load_config(None)
    with pytest.raises(ConfigError, match="--mix runs the mix's flows"):
        run_scenario(config, RunRequest(scenario="email-queue", mix=MIX), echo=print)


def test_orch_scenarios_lists_the_mix() -> None:
    result = CliRunner().invoke(main, ["scenarios"])
    assert result.exit_code == 0
    assert "peak-hour            (mix)" in result.output
    assert "orch run --mix peak-hour" in result.output


# --- running mixes with the real k6 and the real sandbox ---------------------------------


@pytest.fixture(scope="module")
def mix_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project with the shortened mix; one run made the baseline, a second against it."""
    root = tmp_path_factory.mktemp("mix")
    config = make_project(root, short_mix)
    code, out, output = orch(config, "run", "--mix", MIX)
    first = Path(out.strip().splitlines()[-1])
    base_code, _, base_output = orch(config, "baseline", "set", str(first))
    code2, out2, output2 = orch(config, "run", "--mix", MIX, "--against-baseline")
    second = Path(out2.strip().splitlines()[-1])
    return {
        "config": config,
        "first": (code, output, first),
        "baseline": (base_code, base_output),
        "second": (code2, output2, second),
    }


@pytest.mark.slow
def test_orch_run_mix_peak_hour_passes_and_reports_each_flow(mix_runs: dict[str, Any]) -> None:
    code, output, run_dir = mix_runs["first"]
    assert code == ExitCode.OK, output
    assert "PASSED" in output
    results = json.loads((run_dir / "results.json").read_text())
    flows = {f["name"]: f for f in results["flows"]}
    assert list(flows) == FLOWS
    for name, flow in flows.items():
        assert flow["overall"]["requests"] > 0, name
        assert flow["thresholds"] and all(t["ok"] for t in flow["thresholds"]), name
        assert all(t["tags"]["flow"] == name for t in flow["thresholds"])
        assert flow["delivery"]["delivered"] is True, name
    # the flows add up to the whole
    assert sum(f["overall"]["requests"] for f in flows.values()) == results["overall"]["requests"]
    assert {s["name"] for s in results["delivery"]["scenarios"]} == set(FLOWS)
    assert results["delivery"]["delivered"] is True
    assert {e["name"] for e in flows["email-queue"]["endpoints"]} == {
        "email_enqueue",
        "email_queue_status",
    }
    report = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert "## Flows" in report
    for name in FLOWS:
        assert f"### Flow: {name}" in report
        assert f"Flow: {name}</h3>" in html
    assert "| **all** |" in report.split("## Flows")[1].split("### Flow")[0]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["scenario"] == MIX and manifest["profile"] == "mix"
    assert set(manifest["load_profile"]) == set(FLOWS)
    # each flow's module beside the mix's script
    for name in FLOWS:
        assert (run_dir / "script" / f"{name}.flow.js").is_file()


@pytest.mark.slow
def test_a_crossed_flow_threshold_fails_the_mix(tmp_path: Path) -> None:
    def impossible(data: dict[str, Any]) -> None:
        short_mix(data)
        data["scenarios"]["email-queue"]["thresholds"]["http_req_duration"] = ["p(95)<0.001"]
        for flow in data["mixes"][MIX]["flows"].values():
            flow["duration"] = "1s"
            flow.pop("startTime", None)

    config = make_project(tmp_path, impossible)
    code, out, output = orch(config, "run", "--mix", MIX)
    assert code == ExitCode.THRESHOLDS, output
    results = json.loads((Path(out.strip().splitlines()[-1]) / "results.json").read_text())
    failed = [t["metric"] for t in results["thresholds"] if t["ok"] is False]
    assert failed == ["http_req_duration{flow:email-queue}"]
    flows = {f["name"]: f for f in results["flows"]}
    assert all(t["ok"] for t in flows["linkedin-scrape"]["thresholds"])


@pytest.mark.slow
def test_baseline_and_compare_key_a_mix_by_its_name(mix_runs: dict[str, Any]) -> None:
    config: Path = mix_runs["config"]
    base_code, base_output = mix_runs["baseline"]
    assert base_code == 0, base_output
    baseline = config.parent / "baselines" / f"{MIX}_local.json"
    data = json.loads(baseline.read_text())
    assert data["scenario"] == MIX
    assert {e["name"] for e in data["endpoints"]} >= {f"flow:{f}" for f in FLOWS}
    code, output, second = mix_runs["second"]
    # two real 3 s runs on a shared machine may differ beyond the tolerance: what this test
    # holds is that the second run was compared with the mix's own baseline file
    assert code in (ExitCode.OK, ExitCode.REGRESSION), output
    assert (
        f"baseline: no regression against {baseline}" in output
        or f"REGRESSED against {baseline}" in output
    ), output
    _, _, first = mix_runs["first"]
    code, _, output = orch(config, "compare", str(first), str(second))
    assert code == 0, output
    compare = next((config.parent / "results" / "compare").glob("*/compare.json"))
    rows = {row["name"] for row in json.loads(compare.read_text())["rows"]}
    assert {f"flow:{f}" for f in FLOWS} <= rows
    code, _, output = orch(config, "history", MIX)
    assert code == 0, output
    assert first.name in output and second.name in output


@pytest.mark.slow
def test_a_mix_runs_in_local_shards(tmp_path: Path) -> None:
    config = make_project(tmp_path, short_mix)
    code, out, output = orch(config, "run", "--mix", MIX, "--shards", "2")
    assert code == ExitCode.OK, output
    run_dir = Path(out.strip().splitlines()[-1])
    results = json.loads((run_dir / "results.json").read_text())
    assert [f["name"] for f in results["flows"]] == FLOWS
    assert results["delivery"]["delivered"] is True


@pytest.mark.slow
def test_the_k8s_manifests_of_a_mix_hold_every_flow(tmp_path: Path) -> None:
    config = make_project(tmp_path, short_mix)
    code, out, output = orch(config, "run", "--mix", MIX, "--runner", "k8s", "--dry-run")
    assert code == 0, output
    run_dir = Path(out.strip().splitlines()[-1])
    configmap = yaml.safe_load((run_dir / "k8s" / "configmap.yaml").read_text())
    files = configmap["data"]
    for name in FLOWS:
        assert f"{name}.flow.js" in files
        assert f'from "./{name}.flow.js"' in files[f"{MIX}.js"]


def test_a_production_url_in_a_flows_variables_refuses_the_mix(tmp_path: Path) -> None:
    def aimed_at_production(data: dict[str, Any]) -> None:
        data["scenarios"]["email-queue"]["vars"]["recipient_domain"] = (
            "https://api.sales-machine.com/inbox"
        )

    config = load_config(write_config(tmp_path, aimed_at_production))
    with pytest.raises(RefusedError, match=r"api\.sales-machine\.com"):
        run_scenario(config, RunRequest(mix=MIX), echo=print)


def test_orch_render_mix_writes_the_mix_script_and_every_flow_module(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["render", "--mix", MIX, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    script = (tmp_path / f"{MIX}.js").read_text()
    for index, name in enumerate(FLOWS):
        assert (tmp_path / f"{name}.flow.js").is_file()
        assert f'import flow{index} from "./{name}.flow.js";' in script
        exec_name = "flow_" + name.replace("-", "_")
        assert f"export function {exec_name}() {{\n  flow{index}();\n}}" in script


def test_flows_sending_to_a_capped_production_n8n_share_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_TEST_N8N_KEY", "a-test-key-value")

    def shared_n8n(data: dict[str, Any]) -> None:
        data["environments"]["staging"] = {
            "kind": "staging",
            "base_url": "https://api.staging.example",
            "n8n_base_url": "https://n8n.srv997159.hstgr.cloud",
            "secrets": {"WEBHOOK_SECRET": "ORCH_TEST_N8N_KEY"},
            "production_n8n": {
                "host": "n8n.srv997159.hstgr.cloud",
                "webhook_paths": ["/webhook/x/linkedin-scraper/:uniqueId"],
                "max_requests_per_second": 20,
            },
        }
        data["mixes"]["webhooks"] = {
            "flows": {
                "scrape-a": {"scenario": "linkedin-scrape", "rate": 20},
                "scrape-b": {"scenario": "linkedin-scrape", "rate": 20},
            }
        }

    config = load_config(write_config(tmp_path, shared_n8n))
    run = resolve_mix(config, "webhooks", "staging")
    per_minute = [
        f.profile.k6_options()["rate"] * (60 if f.profile.k6_options()["timeUnit"] == "1s" else 1)
        for f in run.flows
    ]
    # 20 req/s for the whole mix: 600 per minute for each of the two flows
    assert per_minute == [600, 600]
