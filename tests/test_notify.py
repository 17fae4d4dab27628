"""Notifications (`notify:`): real `orch run`s with the real k6 tell a loopback receiver
how they ended, in Slack's, Teams' and orch's own JSON; a failing receiver only warns,
and the webhook URL is never written anywhere."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import ExitCode, Outcome
from orchestrator.notify import Notice, payload_for, read_notice, run_link
from tests.conftest import add_to_local_environment, invoke_run, new_run_dirs
from tests.receiver import Receiver, receiver

TOKEN = "T0SECRET/B0SECRET/xoxb-sentinel-5e1d"  # the secret part of a webhook URL
CI = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/load-tests",
    "GITHUB_RUN_ID": "4242",
}
RUN_URL = "https://github.com/acme/load-tests/actions/runs/4242"


def notify_block(targets: list[dict[str, object]]) -> str:
    """``notify:`` YAML for the local environment."""
    text = yaml.safe_dump({"notify": targets}, sort_keys=False)
    return "".join(f"    {line}\n" for line in text.splitlines())


def hook_env(sink: Receiver, **names: str) -> dict[str, str]:
    """The variables holding each receiver's URL (on the loopback receiver)."""
    return {**CI, **{var: f"{sink.url}/{path}/{TOKEN}" for var, path in names.items()}}


def assert_nowhere(secret: str, run_dir: Path, output: str) -> None:
    assert secret not in output
    for path in (p for p in run_dir.rglob("*") if p.is_file()):
        assert secret not in path.read_bytes().decode(errors="replace"), path


@pytest.mark.slow
def test_a_failed_run_is_told_and_a_passed_one_only_where_asked(
    project: Callable[..., Path],
) -> None:
    config = add_to_local_environment(
        project(),
        notify_block(
            [
                {"kind": "webhook", "url_secret": "ORCH_T_HOOK"},
                {"kind": "teams", "url_secret": "ORCH_T_TEAMS", "on": ["failed"]},
                {"kind": "slack", "url_secret": "ORCH_T_SLACK", "on": ["passed", "regressed"]},
            ]
        ),
    )
    with receiver(status=200) as sink:
        env = hook_env(sink, ORCH_T_HOOK="hook", ORCH_T_TEAMS="teams", ORCH_T_SLACK="slack")
        failed = invoke_run(config, "--profile", "impossible", env=env)
        assert failed.exit_code == ExitCode.THRESHOLDS, failed.output
        (failed_dir,) = new_run_dirs(config)
        told_of_failure = list(sink.requests)
        passed = invoke_run(config, env=env)
        assert passed.exit_code == 0, passed.output
        (passed_dir,) = new_run_dirs(config, {failed_dir})
    assert sorted(r.path.split("/")[1] for r in told_of_failure) == ["hook", "teams"]
    assert [r.path.split("/")[1] for r in sink.requests[len(told_of_failure):]] == ["slack"]
    assert "notified webhook (environments.local.notify[0])" in failed.output
    assert "notified teams (environments.local.notify[1])" in failed.output

    (hook,) = sink.at(f"/hook/{TOKEN}")
    assert hook.headers["Content-Type"] == "application/json"
    body = json.loads(hook.body)
    assert body["schema_version"] == 1 and body["source"].startswith("orch ")
    assert (body["scenario"], body["environment"], body["profile"]) == (
        "linkedin-scrape", "local", "impossible"
    )
    assert body["outcome"] == "thresholds_failed" and body["events"] == ["failed"]
    assert body["exit_code"] == 99 and body["k6_exit_code"] == 99
    assert body["verdict"] == "FAILED: thresholds crossed"
    assert body["title"] == "FAILED: linkedin-scrape on local [impossible]"
    assert body["run_folder"] == str(failed_dir.resolve())
    assert body["run_url"] == RUN_URL
    (crossed,) = body["failed_thresholds"]
    assert crossed["metric"] == "http_req_duration{name:linkedin_webhook}"
    assert crossed["expression"] == "p(95)<0.001" and crossed["measured"] > 0
    assert body["figures"]["requests"] == 20 and body["regressions"] == []

    (teams,) = sink.at(f"/teams/{TOKEN}")
    attachment = json.loads(teams.body)["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == body["title"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "CI run", "url": RUN_URL}]

    (slack,) = sink.at(f"/slack/{TOKEN}")
    message = json.loads(slack.body)
    title = "PASSED: linkedin-scrape on local [smoke]"
    assert message["text"] == f"{title}: PASSED: every threshold held"
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "context"]
    assert f"<{RUN_URL}|CI run>" in message["blocks"][-1]["elements"][0]["text"]

    for run_dir, result in ((failed_dir, failed), (passed_dir, passed)):
        assert_nowhere(TOKEN, run_dir, result.output)
        assert_nowhere(sink.url.removeprefix("http://"), run_dir, result.output)


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.mark.slow
def test_a_failing_receiver_only_warns(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 500, no answer, a receiver outside the allow-list and an unset variable: four
    warnings, the run's exit code unchanged, and no URL shown."""
    monkeypatch.setattr("orchestrator.notify.send.NOTIFY_TIMEOUT_S", 0.5)
    monkeypatch.delenv("ORCH_T_UNSET", raising=False)
    config = add_to_local_environment(
        project(),
        notify_block(
            [
                {"kind": "webhook", "url_secret": "ORCH_T_500"},
                {"kind": "slack", "url_secret": "ORCH_T_SILENT"},
                {"kind": "teams", "url_secret": "ORCH_T_OUTSIDE"},
                {"kind": "webhook", "url_secret": "ORCH_T_UNSET"},
            ]
        ),
    )
    with receiver(status=500) as sink, silent_port() as port:
        env = {
            **hook_env(sink, ORCH_T_500="hook"),
            "ORCH_T_SILENT": f"http://127.0.0.1:{port}/{TOKEN}",
            "ORCH_T_OUTSIDE": f"https://outlook.example.test/webhook/{TOKEN}",
        }
        result = invoke_run(config, "--profile", "impossible", env=env)
    assert result.exit_code == ExitCode.THRESHOLDS, result.output
    assert len(sink.at(f"/hook/{TOKEN}")) == 1
    warnings = [line for line in result.output.splitlines() if "not sent" in line]
    assert warnings == [
        "warning: notification environments.local.notify[0] (webhook) not sent: "
        f"{sink.url.removeprefix('http://')} answered HTTP 500",
        "warning: notification environments.local.notify[1] (slack) not sent: "
        "no answer within 0.5 s",
        "warning: notification environments.local.notify[2] (teams) not sent: refusing to "
        "send a notification: local may not reach outlook.example.test: a local environment "
        "reaches loopback only (see `orch env check local` for its allow-list; "
        "docs/staging.md)",
        "warning: notification environments.local.notify[3] (webhook) not sent: the "
        "variable ORCH_T_UNSET is not set (in the environment or .env)",
    ]
    (run_dir,) = new_run_dirs(config)
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 99
    assert_nowhere(TOKEN, run_dir, result.output)


@pytest.mark.slow
def test_a_regression_is_told_to_who_asks_for_it(project: Callable[..., Path]) -> None:
    """Against a baseline, a run made slower by the sandbox regresses (exit 8): the
    receiver that asked for `regressed` hears of it, with the endpoint that regressed."""
    only_regressed = {"kind": "webhook", "url_secret": "ORCH_T_HOOK", "on": ["regressed"]}
    config = add_to_local_environment(project(), notify_block([only_regressed]))
    config.write_text(
        config.read_text().replace(  # VUs enough for the added 150 ms: the load is delivered
            "        preAllocatedVUs: 2\n        maxVUs: 10\n",
            "        preAllocatedVUs: 8\n        maxVUs: 10\n",
            1,
        )
        + "regression: {p95_increase_pct: 100, p95_min_increase_ms: 50, alpha: 0.01}\n"
    )
    with receiver(status=200) as sink:
        env = hook_env(sink, ORCH_T_HOOK="hook")
        first = invoke_run(config, env=env)
        assert first.exit_code == 0, first.output
        (baseline_run,) = new_run_dirs(config)
        made = CliRunner().invoke(
            main, ["baseline", "set", str(baseline_run), "--config", str(config)]
        )
        assert made.exit_code == 0, made.output
        assert sink.requests == []  # passed: not asked for
        config.write_text(
            config.read_text().replace(
                "      latency_ms_p95: 3\n",
                "      latency_ms_p95: 3\n      endpoint_latency_ms: {webhook: 150}\n",
                1,
            )
        )
        slower = invoke_run(config, "--against-baseline", env=env)
    assert slower.exit_code == ExitCode.REGRESSION, slower.output
    (told,) = sink.requests
    body = json.loads(told.body)
    assert body["outcome"] == "passed" and body["events"] == ["regressed"]
    assert body["exit_code"] == 8 and body["title"].startswith("REGRESSED: linkedin-scrape")
    # the one endpoint, and all requests (which are that endpoint's)
    assert {r["endpoint"] for r in body["regressions"]} == {"linkedin_webhook", "all"}
    assert all(r["p95_change_pct"] > 100 for r in body["regressions"])
    assert body["baseline"].endswith("linkedin-scrape_local.json")


def test_the_notice_of_a_folder_and_each_payload(tmp_path: Path) -> None:
    """The notice read from a run folder's files, and how Slack's mrkdwn escapes it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({
        "scenario": "email-queue", "environment": "staging", "profile": "load",
        "duration_s": 61.2, "baseline": {"regressed": True, "file": "baselines/x.json"},
    }))  # fmt: skip
    (run_dir / "compare.json").write_text(json.dumps({"rows": [
        {"name": "a", "regressed": True, "latency_ms": {"p95": [10.0, 12.0]},
         "latency_change_pct": {"p95": 20.0}, "error_rate": [0, 0.02],
         "error_rate_change_points": 2.0, "reasons": ["errors up"]},
        {"name": "b", "regressed": True, "latency_ms": {"p95": [10.0, 30.0]},
         "latency_change_pct": {"p95": 200.0}, "error_rate": [0, 0],
         "error_rate_change_points": 0.0, "reasons": []},
        {"name": "c", "regressed": False},
    ]}))  # fmt: skip
    notice = read_notice(run_dir, Outcome.THRESHOLDS_FAILED, 99, 99, environ={})
    assert notice.events == ["failed", "regressed"] and notice.status == "FAILED"
    assert notice.run_url is None and notice.figures is None
    assert notice.details() == [
        "regressed: b: p95 10.0 → 30.0 ms (+200%)",
        "regressed: a: p95 10.0 → 12.0 ms (+20%), error rate +2.00 points",
    ]
    with_threshold = Notice(**{
        **{k: v for k, v in notice.__dict__.items()},
        "failed_thresholds": [{"metric": "http_req_duration", "expression": "p(95)<500",
                               "measured": 812.5, "unit": "ms"}],
    })  # fmt: skip
    slack = payload_for("slack", with_threshold)
    details = slack["blocks"][3]["text"]["text"]
    assert details.startswith(
        "• threshold http_req_duration: p(95)&lt;500 crossed (measured 812.5 ms)"
    )
    assert payload_for("webhook", notice)["regressions"][0]["endpoint"] == "b"


def test_run_link() -> None:
    assert run_link(CI) == RUN_URL
    assert run_link({**CI, "ORCH_RUN_URL": "https://ci.example.test/7"}) == "https://ci.example.test/7"
    assert run_link({"CI_JOB_URL": "https://gitlab.example.test/-/jobs/9"}).endswith("/9")  # type: ignore[union-attr]
    assert run_link({"GITHUB_RUN_ID": "1"}) is None


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (
            {"kind": "slack", "url": "https://hooks.slack.com/services/x"},
            "url: a webhook URL is a secret",
        ),
        ({"kind": "slack", "url_secret": "SLACK URL"}, "is not a variable name"),
        ({"kind": "email", "url_secret": "X"}, "notify.0.kind"),
        ({"kind": "slack", "url_secret": "X", "on": ["failled"]}, "unknown outcome 'failled'"),
        ({"kind": "slack", "url_secret": "X", "on": []}, "would never notify"),
        ({"kind": "slack"}, "notify.0.url_secret: required key is missing"),
    ],
)
def test_a_wrong_notify_entry_is_refused_naming_its_key(
    project: Callable[..., Path], target: dict[str, object], problem: str
) -> None:
    config = add_to_local_environment(project(), notify_block([target]))
    result = CliRunner().invoke(main, ["render", "linkedin-scrape", "--config", str(config)])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "environments.local.notify.0" in result.output and problem in result.output
