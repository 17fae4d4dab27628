"""N8N webhook URLs, methods, authentication and blocking options, derived from exports.

Each case is an export written here from N8N's own rules (n8n 1.x to 2.x,
packages/workflow/src/node-helpers.ts: getNodeWebhookUrl/getNodeWebhookPath; the Webhook
node's parameters), with the URL N8N serves it at. The same table then drives a real
sandbox: every URL is served, with the trigger's authentication and options enforced.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import SandboxSettings
from orchestrator.config.egress import SharedN8N
from orchestrator.core import DEFAULT_CONFIG, PROJECT_ROOT, ConfigError
from orchestrator.target import N8NWorkflows, start_sandbox
from orchestrator.target.n8n import (
    WebhookRouter,
    fill_route,
    node_webhook_url,
    read_export,
    same_route,
    scenario_webhook,
    select_trigger,
    triggers_in,
)

BASE = "https://n8n.example.test"
WID = "7f3c2a4e-9b1d-4e6f-8a2c-3d5e7f9a1b2c"  # a node's webhookId
WORKFLOW_ID = "Lk7sCr4pEr9T2xQa"
SECRET = "loadtest:n8n-table-secret-91c2"  # basicAuth takes user:password
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def export(
    path: str | None = "linkedin-scraper/:uniqueId",
    *,
    webhook_id: str | None = WID,
    name: str = "Webhook",
    workflow: dict[str, Any] | None = None,
    disabled: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """A one-workflow N8N export whose trigger has these parameters."""
    node: dict[str, Any] = {
        "parameters": {**({"path": path} if path is not None else {}), **params},
        "name": name,
        "type": "n8n-nodes-base.webhook",
        "typeVersion": 2,
        "position": [0, 0],
        **({"disabled": True} if disabled else {}),
    }
    if webhook_id is not None:
        node["webhookId"] = webhook_id
    return {
        "id": WORKFLOW_ID,
        "name": "Test workflow",
        "active": True,
        "nodes": [node, {"name": "Next", "type": "n8n-nodes-base.noOp", "parameters": {}}],
        "connections": {},
        **(workflow or {}),
    }


@dataclass
class Case:
    id: str
    export: dict[str, Any]
    url: str  # what N8N serves, with route parameters as :name
    methods: tuple[str, ...] = ("POST",)
    authentication: str = "none"
    endpoint: str = "webhook"
    blocks: tuple[str, ...] = ()  # words of the findings that turn a POST load test away
    warns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    story: bool = False  # served as the story's /webhook/{workflow}/{id}
    params: dict[str, Any] = field(default_factory=dict)


CASES = [
    # --- where: N8N's getNodeWebhookUrl / getNodeWebhookPath
    Case(
        "dynamic-with-webhookId",
        export(httpMethod="POST"),
        f"{BASE}/webhook/{WID}/linkedin-scraper/:uniqueId",
    ),
    Case(
        "dynamic-leading-parameter",
        export(":uniqueId", httpMethod="POST"),
        f"{BASE}/webhook/{WID}/:uniqueId",
        story=True,  # /webhook/{webhookId}/{id}: the story's shape, the "workflow" a UUID
    ),
    Case(
        "dynamic-leading-slash",
        export("/scrape/:profile/:job", httpMethod="POST"),
        f"{BASE}/webhook/{WID}/scrape/:profile/:job",
    ),
    Case(
        "static-with-webhookId",
        export("linkedin-scraper", httpMethod="POST"),
        f"{BASE}/webhook/linkedin-scraper",
    ),
    Case(
        "static-leading-slash", export("/leads/new", httpMethod="POST"), f"{BASE}/webhook/leads/new"
    ),
    Case("static-empty-path", export("", httpMethod="POST"), f"{BASE}/webhook/{WID}"),
    Case(
        "no-webhookId",
        export("lead", webhook_id=None, name="Scrape Hook", httpMethod="POST"),
        f"{BASE}/webhook/{WORKFLOW_ID}/scrape%20hook/lead",
    ),
    Case(
        "no-webhookId-encoded-name",
        export("x", webhook_id=None, name="Hook (LinkedIn)/É", httpMethod="POST"),
        f"{BASE}/webhook/{WORKFLOW_ID}/hook%20(linkedin)%2F%C3%A9/x",
    ),
    Case(
        "no-webhookId-dynamic",
        export("jobs/:id", webhook_id=None, httpMethod="POST"),
        f"{BASE}/webhook/{WORKFLOW_ID}/webhook/jobs/:id",
        blocks=("no webhookId",),
    ),
    Case(
        "test-endpoint",
        export(httpMethod="POST"),
        f"{BASE}/webhook-test/{WID}/linkedin-scraper/:uniqueId",
        endpoint="webhook-test",
    ),
    Case(
        "custom-endpoint",
        export("linkedin-scraper", httpMethod="POST"),
        f"{BASE}/hooks/linkedin-scraper",
        endpoint="hooks",
    ),
    # --- methods
    Case(
        "default-method-GET",
        export("get-only"),
        f"{BASE}/webhook/get-only",
        ("GET",),
        blocks=("listens for GET",),
    ),
    Case(
        "several-methods",
        export("many", multipleMethods=True, httpMethod=["GET", "POST", "PUT"]),
        f"{BASE}/webhook/many",
        ("GET", "POST", "PUT"),
    ),
    Case(
        "several-methods-default",
        export("both", multipleMethods=True),
        f"{BASE}/webhook/both",
        ("GET", "POST"),
    ),
    Case(
        "several-methods-without-post",
        export("no-post", multipleMethods=True, httpMethod=["GET", "DELETE"]),
        f"{BASE}/webhook/no-post",
        ("GET", "DELETE"),
        blocks=("listens for GET, DELETE",),
    ),
    # --- authentication
    Case(
        "auth-none",
        export("a-none", httpMethod="POST", authentication="none"),
        f"{BASE}/webhook/a-none",
    ),
    Case(
        "auth-basic",
        export("a-basic", httpMethod="POST", authentication="basicAuth"),
        f"{BASE}/webhook/a-basic",
        authentication="basicAuth",
    ),
    Case(
        "auth-header",
        export("a-header", httpMethod="POST", authentication="headerAuth"),
        f"{BASE}/webhook/a-header",
        authentication="headerAuth",
    ),
    Case(
        "auth-jwt",
        export("a-jwt", httpMethod="POST", authentication="jwtAuth"),
        f"{BASE}/webhook/a-jwt",
        authentication="jwtAuth",
    ),
    Case(
        "auth-unknown",
        export("a-oauth", httpMethod="POST", authentication="n8nOAuth2"),
        f"{BASE}/webhook/a-oauth",
        authentication="n8nOAuth2",
        blocks=("not one orch can send",),
    ),
    # --- options and states that turn a load test away (or do not)
    Case(
        "ignore-bots",
        export("o-bots", httpMethod="POST", options={"ignoreBots": True}),
        f"{BASE}/webhook/o-bots",
        blocks=("Ignore Bots",),
    ),
    Case(
        "ip-whitelist-others",
        export("o-ip-others", httpMethod="POST", options={"ipWhitelist": "10.1.2.3, 192.0.2.0/24"}),
        f"{BASE}/webhook/o-ip-others",
        warns=("10.1.2.3, 192.0.2.0/24",),
    ),
    Case(
        "ip-whitelist-loopback",
        export("o-ip-lo", httpMethod="POST", options={"ipWhitelist": "127.0.0.1"}),
        f"{BASE}/webhook/o-ip-lo",
        warns=("127.0.0.1",),
    ),
    Case(
        "allowed-origins",
        export("o-cors", httpMethod="POST", options={"allowedOrigins": "https://app.example.com"}),
        f"{BASE}/webhook/o-cors",
        notes=("browsers only",),
    ),
    Case(
        "allowed-origins-any",
        export("o-any", httpMethod="POST", options={"allowedOrigins": "*"}),
        f"{BASE}/webhook/o-any",
    ),
    Case(
        "disabled-node",
        export("off", httpMethod="POST", disabled=True),
        f"{BASE}/webhook/off",
        blocks=("disabled",),
    ),
    Case(
        "inactive-workflow",
        export("idle", httpMethod="POST", workflow={"active": False}),
        f"{BASE}/webhook/idle",
        warns=("inactive",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_export_derives_what_n8n_serves(case: Case) -> None:
    (trigger,) = triggers_in(case.export, "case.json")
    assert trigger.url(BASE, case.endpoint) == case.url
    assert trigger.url(BASE + "/", case.endpoint) == case.url  # a trailing slash on the base
    assert trigger.methods == case.methods
    assert trigger.authentication == case.authentication
    assert trigger.story_format(case.endpoint) is case.story
    findings = trigger.findings("POST")
    by = {s: [f.text for f in findings if f.severity == s] for s in ("blocks", "warning", "note")}
    for severity, expected in (
        ("blocks", case.blocks),
        ("warning", case.warns),
        ("note", case.notes),
    ):
        assert len(by[severity]) == len(expected), (severity, by[severity])
        for words, text in zip(expected, by[severity], strict=True):
            assert words in text, (severity, text)


def test_the_ported_functions_follow_n8n_node_helpers() -> None:
    """getNodeWebhookUrl's own branches, called as N8N calls them (base = url/endpoint)."""
    base = f"{BASE}/webhook"
    assert node_webhook_url(base, "wf", "Webhook", "hid", "a/:b") == f"{base}/hid/a/:b"
    assert node_webhook_url(base, "wf", "Webhook", "hid", ":b") == f"{base}/hid/:b"
    assert node_webhook_url(base, "wf", "Webhook", "hid", "/a") == f"{base}/a"
    assert node_webhook_url(base, "wf", "Webhook", "hid", "") == f"{base}/hid"
    assert node_webhook_url(base, "wf", "Web Hook", None, "a") == f"{base}/wf/web%20hook/a"
    # isFullPath false (another node type): the webhookId is always prefixed
    assert node_webhook_url(base, "wf", "Webhook", "hid", "a", False) == f"{base}/hid/a"
    # a webhookId of "" is not "absent" for getNodeWebhookPath (=== undefined)
    assert node_webhook_url(base, "wf", "Webhook", "", "a/:b") == f"{base}/a/:b"


def test_the_shipped_export_is_served_where_n8n_serves_it() -> None:
    (trigger,) = read_export(PROJECT_ROOT / "workflows" / "linkedin-scraper.json")
    assert trigger.served_path() == f"/webhook/{WID}/linkedin-scraper/:uniqueId"
    assert (trigger.methods, trigger.authentication) == (("POST",), "headerAuth")
    assert not trigger.story_format()  # not /webhook/{workflow}/{id}: a third segment
    assert trigger.findings("POST") == []


def test_exports_of_several_workflows_and_triggers() -> None:
    first = export("one", name="Hook A", httpMethod="POST")
    second = export("two", name="Hook B", httpMethod="POST", workflow={"name": "Other"})
    triggers = triggers_in([first, second], "all.json")  # `n8n export:workflow --all`
    assert [t.node for t in triggers] == ["Hook A", "Hook B"]
    assert select_trigger(triggers, "Hook B", "all.json").served_path() == "/webhook/two"
    with pytest.raises(ConfigError, match=r"has 2 webhook triggers .* vars\.webhook_trigger"):
        select_trigger(triggers, None, "all.json")
    with pytest.raises(ConfigError, match="no webhook trigger named 'Hook C'"):
        select_trigger(triggers, "Hook C", "all.json")


def test_what_cannot_be_derived_is_said(tmp_path: Path) -> None:
    expression = tmp_path / "expression.json"
    expression.write_text(json.dumps(export("={{ $env.HOOK_PATH }}")))
    with pytest.raises(ConfigError, match=r"N8N expression .* vars\.webhook_path"):
        read_export(expression)
    nameless = export("x", webhook_id=None, workflow={"id": None})
    with pytest.raises(ConfigError, match="no webhookId and the export no workflow id"):
        triggers_in(nameless, "old.json")[0].served_path()
    with pytest.raises(ConfigError, match="does not exist; export the workflow from N8N"):
        read_export(tmp_path / "missing.json")
    (tmp_path / "none.json").write_text(json.dumps({"nodes": []}))
    with pytest.raises(ConfigError, match="no webhook trigger node"):
        read_export(tmp_path / "none.json")


def test_a_scenario_takes_its_path_from_the_export_unless_overridden(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(export(httpMethod="POST")))
    served = f"/webhook/{WID}/linkedin-scraper/:uniqueId"
    assert scenario_webhook({"webhook_export": str(path)}, "s").path == served
    hooks = scenario_webhook({"webhook_export": str(path), "n8n_endpoint_webhook": "hooks"}, "s")
    assert hooks.path == served.replace("/webhook/", "/hooks/")
    agreeing = scenario_webhook(
        {"webhook_export": str(path), "webhook_path": f"/webhook/{WID}/linkedin-scraper/{{id}}"},
        "s",
    )
    assert agreeing.disagreement is None  # {id} and :uniqueId route alike
    stale = scenario_webhook(
        {"webhook_export": str(path), "webhook_path": "/webhook/linkedin-scraper/{id}"}, "s"
    )
    assert stale.path == "/webhook/linkedin-scraper/{id}"  # the override is what the run uses
    assert stale.disagreement and served in stale.disagreement
    alone = scenario_webhook({"webhook_path": "/webhook/x/:id"}, "s")
    assert (alone.path, alone.trigger) == ("/webhook/x/:id", None)
    with pytest.raises(ConfigError, match="not a URL path"):
        scenario_webhook({"webhook_path": "webhook/x y"}, "s")
    with pytest.raises(ConfigError, match=r"name the N8N workflow export in vars\.webhook_export"):
        scenario_webhook({"webhook_trigger": "Webhook"}, "s")


def test_route_helpers() -> None:
    assert fill_route("/webhook/h/a/:x/{y}", "id 1/2") == "/webhook/h/a/id%201%2F2/id%201%2F2"
    assert same_route("/webhook/h/:a", "/webhook/h/{b}")
    assert not same_route("/webhook/h/:a", "/webhook/h/a")
    assert not same_route("/webhook/h/:a", "/webhook/h/:a/b")


def test_the_router_looks_webhooks_up_as_n8n_does() -> None:
    """WebhookService.findWebhook: a static path first, else the first segment as the
    webhookId with as many further segments and its static segments present."""
    triggers = [
        triggers_in(export("jobs/:id", httpMethod="POST"), "a.json")[0],
        triggers_in(export("jobs/:id/:part", httpMethod="POST"), "b.json")[0],
        triggers_in(export(":any/:thing", httpMethod="POST"), "c.json")[0],
        triggers_in(export("jobs", httpMethod="GET", webhook_id="other"), "d.json")[0],
    ]
    router = WebhookRouter.of(triggers)
    found = router.find("POST", f"{WID}/jobs/42")
    assert found and found[0].trigger.export == "a.json" and found[1] == {"id": "42"}
    found = router.find("POST", f"{WID}/jobs/42/")  # N8N drops a trailing slash
    assert found and found[0].trigger.export == "a.json"
    found = router.find("POST", f"{WID}/jobs/42/cv")
    assert found and found[0].trigger.export == "b.json"
    found = router.find("POST", f"{WID}/x/y")  # parameters only: matches anything
    assert found and found[0].trigger.export == "c.json" and found[1] == {"any": "x", "thing": "y"}
    assert router.find("GET", "jobs") and not router.find("POST", "jobs")
    assert router.methods("jobs") == ["GET"]
    assert router.find("POST", "nobody/jobs/1") is None
    assert router.find("POST", f"{WID}/jobs") is None  # one segment short


# --------------------------------------------------------------------------- the sandbox


def post(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=b'{"profileUrl": "https://www.linkedin.com/in/x"}',
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "orch-test-browser/1",
            **(headers or {}),
        },
    )
    try:
        with OPENER.open(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def jwt(secret: str) -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head, body = b64(b'{"alg":"HS256","typ":"JWT"}'), b64(b'{"sub":"t"}')
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


GOOD = {
    "none": {},
    "headerAuth": {"X-N8N-API-KEY": SECRET},
    "basicAuth": {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()},
    "jwtAuth": {"Authorization": f"Bearer {jwt(SECRET)}"},
}
# What N8N answers without credentials: header auth 403, basic auth 401, JWT 401
MISSING = {"headerAuth": 403, "basicAuth": 401, "jwtAuth": 401}


@pytest.mark.slow
def test_the_sandbox_serves_the_table_where_n8n_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One sandbox serving every production-endpoint case of the table from its export:
    each derived URL is answered (or turned away as N8N would), nothing else is."""
    monkeypatch.setenv("ORCH_TEST_N8N_SECRET", SECRET)
    served = [c for c in CASES if c.endpoint == "webhook" and c.authentication in GOOD]
    files = []
    for case in served:
        path = tmp_path / f"{case.id}.json"
        path.write_text(json.dumps(case.export))
        files.append(str(path))
    settings = SandboxSettings(
        port=0, latency_ms_median=0, latency_ms_p95=0, webhook_secret_env="ORCH_TEST_N8N_SECRET"
    )
    with start_sandbox(settings, n8n=N8NWorkflows(tuple(files))) as box:
        for case in served:
            url = fill_route(case.url.replace(BASE, box.url), "job-1")
            status, body = post(url, GOOD[case.authentication])
            if case.id in ("disabled-node", "inactive-workflow") or "POST" not in case.methods:
                assert status == 404, (case.id, status, body)  # not registered (for POST)
                continue
            if "no webhookId" in " ".join(case.blocks):
                assert status == 404, (case.id, status, body)  # N8N routes it as static
                continue
            if case.id == "ip-whitelist-others":
                assert status == 403 and "not whitelisted" in body["message"], case.id
                continue
            assert status == 200, (case.id, status, body)
            assert body["executionId"]
            if ":" in case.url.rsplit("/", 1)[-1]:
                assert "job-1" in body["params"].values(), body
            if case.authentication in MISSING:
                assert post(url)[0] == MISSING[case.authentication], case.id
                assert post(url, {"X-N8N-API-KEY": "wrong", "Authorization": "Basic d3Jvbmc6eA=="})[
                    0
                ] in (401, 403), case.id
        bots = next(c for c in served if c.id == "ignore-bots")
        status, _ = post(bots.url.replace(BASE, box.url), {"User-Agent": "Grafana k6/1.1.0"})
        assert status == 403  # k6's own User-Agent is a bot to Ignore Bots
        assert post(f"{box.url}/webhook/linkedin-scraper/job-1")[0] == 404  # the old assumption
        assert post(f"{box.url}/webhook-test/{WID}/linkedin-scraper/job-1")[0] == 404


def test_the_documented_production_n8n_path_admits_the_derived_url() -> None:
    """docs/staging.md and orch.yaml show `production_n8n.webhook_paths` for the shipped
    export: the URL orch derives (and the script fills per request) fits them."""
    (trigger,) = read_export(PROJECT_ROOT / "workflows" / "linkedin-scraper.json")
    for source in (PROJECT_ROOT / "docs" / "staging.md", DEFAULT_CONFIG):
        (paths,) = re.findall(r"webhook_paths: (\[.*?\])", source.read_text(encoding="utf-8"))
        rule = SharedN8N("n8n.example.test", tuple(json.loads(paths)), None)
        assert rule.path_allowed(fill_route(trigger.served_path(), "loadtest-3-14")), source
        assert not rule.path_allowed("/webhook/linkedin-scraper/loadtest-3-14"), source
