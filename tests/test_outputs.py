"""k6's own outputs (`outputs:`) and the web dashboard's export (`web_dashboard_export`):
validated, checked against the allow-list before the run, and sent by the real k6 to real
loopback receivers (Prometheus remote write, InfluxDB /write, OTLP/HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config, resolve_run
from orchestrator.core import ConfigError, ExitCode
from orchestrator.execution.outputs import extra_outputs, outputs_not_sent
from tests.conftest import add_to_local_environment, invoke_run, new_run_dirs
from tests.receiver import receiver

PROM_TOKEN = "prom-token-sentinel-4f1c9a"
INFLUX_PASSWORD = "influx-pass-sentinel-77d2"


def prometheus_and_dashboard(receiver_url: str) -> str:
    """The dashboard export and a Prometheus remote-write output pushing every second."""
    return f"""\
    web_dashboard_export: true
    outputs:
      - kind: experimental-prometheus-rw
        url: {receiver_url}/api/v1/write
        settings: {{K6_PROMETHEUS_RW_PUSH_INTERVAL: 1s}}
"""


@pytest.mark.slow
def test_prometheus_influxdb_and_otlp_receive_the_runs_metrics(
    project: Callable[..., Path],
) -> None:
    """One short real run with all three outputs and the dashboard export: each receiver
    gets non-empty pushes, the dashboard is written, and no secret is written anywhere."""
    with receiver() as sink:
        host = sink.url.removeprefix("http://")
        config = add_to_local_environment(
            project(),
            prometheus_and_dashboard(sink.url)
            + f"""\
        secrets: {{K6_PROMETHEUS_RW_BEARER_TOKEN: ORCH_T_PROM_TOKEN}}
      - kind: influxdb
        url_secret: ORCH_T_INFLUX_URL
        settings: {{K6_INFLUXDB_PUSH_INTERVAL: 1s}}
      - kind: experimental-opentelemetry
        url: {sink.url}
        settings: {{K6_OTEL_EXPORT_INTERVAL: 1s, K6_OTEL_FLUSH_INTERVAL: 1s}}
""",
        )
        influx_url = f"http://k6writer:{INFLUX_PASSWORD}@{host}/k6db"
        result = invoke_run(
            config, env={"ORCH_T_PROM_TOKEN": PROM_TOKEN, "ORCH_T_INFLUX_URL": influx_url}
        )
    assert result.exit_code == 0, result.output
    (run_dir,) = new_run_dirs(config)

    prom = sink.at("/api/v1/write")
    assert prom and all(len(r.body) > 0 for r in prom)
    assert {r.headers.get("Content-Encoding") for r in prom} == {"snappy"}
    assert {r.headers.get("Authorization") for r in prom} == {f"Bearer {PROM_TOKEN}"}

    writes = sink.at("/write")
    lines = [line for r in writes for line in r.body.decode().splitlines() if line.strip()]
    assert writes and all("db=k6db" in r.path for r in writes)
    assert any(line.startswith("http_reqs,") for line in lines)
    summary = json.loads((run_dir / "summary.json").read_text())
    # one http_reqs line per request, besides the other metrics
    assert sum(line.startswith("http_reqs,") for line in lines) == summary["metrics"][
        "http_reqs"
    ]["count"]

    otlp = sink.at("/v1/metrics")
    assert otlp and all(len(r.body) > 0 for r in otlp)
    assert {r.headers.get("Content-Type") for r in otlp} == {"application/x-protobuf"}

    log = (run_dir / "k6.log").read_text()
    assert "level=error" not in log and "level=warning" not in log, log

    dashboard = run_dir / "dashboard.html"
    assert dashboard.stat().st_size > 10_000
    assert "<html" in dashboard.read_text(errors="replace")[:2000].lower()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["files"]["dashboard"] == "dashboard.html"
    assert any("experimental-prometheus-rw (environments.local.outputs[0])" in n
               for n in manifest["notes"])
    resolved = json.loads((run_dir / "config.resolved.json").read_text())
    assert [o["url"] for o in resolved["outputs"]] == [
        f"{sink.url}/api/v1/write", "***", sink.url
    ]
    # the command line holds no endpoint: every setting went through a variable
    assert manifest["command"].count("--out") == 4
    assert not any(sink.url in part or host in part for part in manifest["command"])

    for path in [p for p in run_dir.rglob("*") if p.is_file()]:
        text = path.read_bytes().decode(errors="replace")
        for secret in (PROM_TOKEN, INFLUX_PASSWORD, influx_url):
            assert secret not in text, f"{secret} in {path}"
    for secret in (PROM_TOKEN, INFLUX_PASSWORD, influx_url):
        assert secret not in result.output
    print(  # the figures, for the record (-s)
        f"\nprometheus: {len(prom)} pushes, {sum(len(r.body) for r in prom)} bytes; "
        f"influxdb: {len(writes)} writes, {len(lines)} lines; "
        f"otlp: {len(otlp)} exports, {sum(len(r.body) for r in otlp)} bytes; "
        f"dashboard {dashboard.stat().st_size} bytes; "
        f"{summary['metrics']['http_reqs']['count']} requests"
    )


@pytest.mark.slow
def test_each_shard_sends_its_metrics_and_writes_its_dashboard(
    project: Callable[..., Path],
) -> None:
    with receiver() as sink:
        config = add_to_local_environment(project(), prometheus_and_dashboard(sink.url))
        result = invoke_run(config, "--shards", "2")
    assert result.exit_code == 0, result.output
    (run_dir,) = new_run_dirs(config)
    for shard in ("1", "2"):
        assert (run_dir / "shards" / shard / "dashboard.html").stat().st_size > 10_000
        shard_manifest = json.loads((run_dir / "shards" / shard / "run.json").read_text())
        assert shard_manifest["files"]["dashboard"] == "dashboard.html"
        assert shard_manifest["command"].count("--out") == 2
    assert len(sink.at("/api/v1/write")) >= 2  # at least the final push of each k6


@pytest.mark.slow
def test_a_run_too_short_for_a_dashboard_does_not_claim_one(
    project: Callable[..., Path],
) -> None:
    """k6 skips the export with fewer than 2 periods of data (20 iterations end in well
    under k6's default 10 s period): run.json then lists no dashboard and says why."""
    with receiver() as sink:
        config = add_to_local_environment(project(), prometheus_and_dashboard(sink.url))
        result = invoke_run(config, "--profile", "impossible")
    assert result.exit_code == 99, result.output
    (run_dir,) = new_run_dirs(config)
    assert not (run_dir / "dashboard.html").exists()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert "dashboard" not in manifest["files"]
    assert any("no dashboard.html" in note for note in manifest["notes"])


@pytest.mark.slow
@pytest.mark.docker
def test_k6_in_docker_sends_its_metrics_and_writes_its_dashboard(
    project: Callable[..., Path],
) -> None:
    """The same variables reach k6 in the container (host networking, as for any loopback
    target), and the export lands in the mounted run folder."""
    from orchestrator.execution.docker import DEFAULT_IMAGE, docker_status, image_status
    from tests.test_docker_runner import _require_or_skip  # skip, or fail where CI needs Docker

    if not docker_status().reachable or not image_status(DEFAULT_IMAGE).present:
        _require_or_skip(f"no Docker engine, or no image {DEFAULT_IMAGE}")
    with receiver() as sink:
        config = add_to_local_environment(project(), prometheus_and_dashboard(sink.url))
        result = invoke_run(config, "--runner", "docker")
    assert result.exit_code == 0, result.output
    (run_dir,) = new_run_dirs(config)
    assert (run_dir / "dashboard.html").stat().st_size > 10_000
    assert sink.at("/api/v1/write") and all(r.body for r in sink.at("/api/v1/write"))
    assert json.loads((run_dir / "run.json").read_text())["runner"] == "docker"


def test_variables_and_options_k6_is_given(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each kind's endpoint becomes the variables that kind reads; settings and secrets
    are added; the dashboard's period follows the planned duration."""
    monkeypatch.setenv("ORCH_T_OTEL_HEADERS", "Authorization=Basic c2VjcmV0")
    monkeypatch.setenv("ORCH_T_PROM", "https://prom.example.test/api/v1/write")
    config = add_to_local_environment(
        project(),
        """\
    web_dashboard_export: true
    outputs:
      - kind: influxdb
        url: http://127.0.0.1:8086/k6
      - kind: experimental-opentelemetry
        url: https://127.0.0.1:4317
        protocol: grpc
        settings: {K6_OTEL_SERVICE_NAME: orch, K6_OTEL_GRPC_EXPORTER_INSECURE_X: true}
        secrets: {K6_OTEL_HEADERS: ORCH_T_OTEL_HEADERS}
""",
    )
    loaded = load_config(config)
    extra = extra_outputs(resolve_run(loaded, "linkedin-scrape", "local"))
    assert extra.args == ["--out", "influxdb", "--out", "experimental-opentelemetry"]
    assert extra.env == {
        "K6_INFLUXDB_ADDR": "http://127.0.0.1:8086",
        "K6_INFLUXDB_DB": "k6",
        "K6_OTEL_EXPORTER_TYPE": "grpc",
        "K6_OTEL_GRPC_EXPORTER_ENDPOINT": "127.0.0.1:4317",
        "K6_OTEL_GRPC_EXPORTER_INSECURE": "false",
        "K6_OTEL_SERVICE_NAME": "orch",
        "K6_OTEL_GRPC_EXPORTER_INSECURE_X": "true",
        "K6_OTEL_HEADERS": "Authorization=Basic c2VjcmV0",
        "K6_WEB_DASHBOARD": "true",
        "K6_WEB_DASHBOARD_PORT": "-1",
        "K6_WEB_DASHBOARD_EXPORT": "dashboard.html",
        "K6_WEB_DASHBOARD_PERIOD": "200ms",  # the 2 s smoke profile: 10 periods
    }
    assert extra.files == {"dashboard": "dashboard.html"}
    long = extra_outputs(resolve_run(loaded, "linkedin-scrape", "local", "long"))
    assert long.env["K6_WEB_DASHBOARD_PERIOD"] == "6000ms"  # 60 s planned
    resolved = resolve_run(loaded, "linkedin-scrape", "local")
    assert "Authorization=Basic c2VjcmV0" in resolved.secret_values()
    note = outputs_not_sent(resolved)
    assert note is not None and "influxdb, experimental-opentelemetry, web_dashboard_export" in note

    otlp_http = add_to_local_environment(
        project(),
        """\
    outputs:
      - {kind: experimental-opentelemetry, url: "http://[::1]:4318/otlp/v1/metrics"}
      - {kind: experimental-prometheus-rw, url: "${ORCH_T_PROM}"}
""",
    )
    staging_like = load_config(otlp_http)
    (otlp, prom) = resolve_run(staging_like, "linkedin-scrape", "local").outputs
    assert otlp.env == {
        "K6_OTEL_EXPORTER_TYPE": "http",
        "K6_OTEL_HTTP_EXPORTER_ENDPOINT": "[::1]:4318",
        "K6_OTEL_HTTP_EXPORTER_INSECURE": "true",
        "K6_OTEL_HTTP_EXPORTER_URL_PATH": "/otlp/v1/metrics",
    }
    assert prom.env == {"K6_PROMETHEUS_RW_SERVER_URL": "https://prom.example.test/api/v1/write"}


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("      - {kind: influxdb}", "outputs.0: the endpoint is missing"),
        ("      - {kind: influxdb, url: x, url_secret: Y}", "give one of them, not both"),
        ("      - {kind: influxdb, url: 'ftp://h/db'}", "the url must be http(s)://host"),
        ("      - {kind: influxdb, url: 'http://h/db?precision=s'}", "may not carry a query"),
        ("      - {kind: statsd, url: 'http://h'}", "outputs.0.kind"),
        (
            "      - {kind: influxdb, url: 'http://h/db', settings: {K6_INFLUXDB_PROXY: x}}",
            "a proxy would connect outside the allow-list",
        ),
        (
            "      - {kind: influxdb, url: 'http://h/db', settings: {K6_VUS: 50}}",
            "influxdb's settings are named K6_INFLUXDB_",
        ),
        (
            "      - {kind: experimental-prometheus-rw, url: 'http://h',"
            " secrets: {K6_PROMETHEUS_RW_SERVER_URL: X}}",
            "orch sets it from url",
        ),
        (
            "      - {kind: influxdb, url: 'http://h/db'}\n"
            "      - {kind: influxdb, url: 'http://h/db2'}",
            "listed more than once",
        ),
        ("      - {kind: influxdb, url: 'http://h/db', protocol: grpc}", "only experimental-open"),
    ],
)
def test_a_wrong_output_is_refused_naming_its_key(
    project: Callable[..., Path], block: str, problem: str
) -> None:
    config = add_to_local_environment(project(), f"    outputs:\n{block}\n")
    result = CliRunner().invoke(main, ["render", "linkedin-scrape", "--config", str(config)])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "environments.local.outputs" in result.output and problem in result.output


def test_a_missing_secret_names_the_variable_and_the_key(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCH_T_UNSET", raising=False)
    config = add_to_local_environment(
        project(), "    outputs:\n      - {kind: influxdb, url_secret: ORCH_T_UNSET}\n"
    )
    with pytest.raises(ConfigError) as caught:
        resolve_run(load_config(config), "linkedin-scrape", "local")
    assert "environments.local.outputs[0].url_secret needs" in caught.value.message
    assert "ORCH_T_UNSET" in caught.value.message


@pytest.mark.parametrize(
    ("url", "host"),
    [("http://10.20.30.40:9090/api/v1/write", "10.20.30.40"),
     ("https://prometheus.example.test/api/v1/push", "prometheus.example.test")],
)
def test_an_output_outside_the_allow_list_is_refused_before_the_run(
    project: Callable[..., Path], url: str, host: str
) -> None:
    config = add_to_local_environment(
        project(),
        "    outputs:\n      - {kind: experimental-prometheus-rw, url_secret: ORCH_T_PROM}\n",
    )
    secret_url = url + "/tenant-secret-path-9f2e"
    result = invoke_run(config, env={"ORCH_T_PROM": secret_url})
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert f"may not reach {host}" in result.output
    assert "written in environments.local.outputs[0].url" in result.output
    assert "tenant-secret-path-9f2e" not in result.output
    assert not (config.parent / "results").exists() or not any(
        (config.parent / "results").iterdir()
    )
