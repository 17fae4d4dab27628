"""A throw-away project built from the repository's own orch.yaml, shortened for tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from conftest import free_port

from orchestrator.core import DEFAULT_CONFIG, K6_SCRIPTS_DIR, PROJECT_ROOT, TEMPLATES_DIR

SMOKE_SECONDS = "2s"


def shipped_config() -> dict[str, Any]:
    """The repository's orch.yaml as data."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def make_project(
    root: Path, edit: Callable[[dict[str, Any]], None] | None = None, *, port: int | None = None
) -> Path:
    """Copy templates, helpers and the N8N workflow exports to ``root``, write a shortened
    orch.yaml, return its path.

    The local environment points at a free loopback port, every smoke profile lasts
    ``SMOKE_SECONDS``, and ``edit`` may change the data before it is written.
    """
    shutil.copytree(TEMPLATES_DIR, root / "templates", dirs_exist_ok=True)
    shutil.copytree(K6_SCRIPTS_DIR, root / "k6_scripts", dirs_exist_ok=True)
    shutil.copytree(PROJECT_ROOT / "workflows", root / "workflows", dirs_exist_ok=True)
    data = shipped_config()
    data["defaults"]["runner"] = "native"
    local = data["environments"]["local"]
    url = f"http://127.0.0.1:{port or free_port()}"
    local["base_url"] = local["n8n_base_url"] = url
    local["sandbox"].update({"latency_ms_median": 1, "latency_ms_p95": 3})
    for scenario in data["scenarios"].values():
        scenario["profiles"]["smoke"]["duration"] = SMOKE_SECONDS
    if edit is not None:
        edit(data)
    # a mix whose scenarios the edit removed goes too (the config would be refused)
    data["mixes"] = {
        name: mix
        for name, mix in (data.get("mixes") or {}).items()
        if all((f or {}).get("scenario", k) in data["scenarios"] for k, f in mix["flows"].items())
    }
    config = root / "orch.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return config


N8N_EXPORT: dict[str, Any] = {
    "name": "LinkedIn scraper",
    "nodes": [
        {
            "parameters": {
                "httpMethod": "POST",
                "path": "linkedin-scraper/:uniqueId",
                "authentication": "none",
                "responseMode": "onReceived",
            },
            "name": "Webhook",
            "type": "n8n-nodes-base.webhook",
            "typeVersion": 2,
            "position": [0, 0],
            "webhookId": "7f3c2a4e-0000-4000-8000-000000000000",
        },
        {"parameters": {}, "name": "Scrape profile", "type": "n8n-nodes-base.httpRequest"},
    ],
    "connections": {},
}


def write_workflow(root: Path, authentication: str = "none", **params: Any) -> Path:
    """Write an N8N export with a webhook trigger to ``root/workflows/linkedin-scraper.json``."""
    export = json.loads(json.dumps(N8N_EXPORT))
    export["nodes"][0]["parameters"].update({"authentication": authentication, **params})
    path = root / "workflows" / "linkedin-scraper.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(export, indent=2), encoding="utf-8")
    return path
