"""k6-operator manifests: valid against the TestRun CRD and Kubernetes' own schemas, a
flattened script that real k6 loads, secrets kept out of files, and the cluster guard.

The TestRun is validated against the upstream CRD when one is provided at
../shared/k6-operator/k6.io_testruns.yaml, else against orch's own schema of the fields
it generates (tests/fixtures/k6-operator/testrun.schema.yaml). No cluster runs here: the
live path is tested up to kubectl's first call.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config, resolve_run
from orchestrator.core import ExitCode, RefusedError
from orchestrator.execution import find_k6, render_script
from orchestrator.execution.k8s import (
    ClusterContext,
    K8sSettings,
    build_manifests,
    flat_key,
    flatten_script,
    guard_context,
    to_yaml,
)

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_CRD = ROOT.parent / "shared" / "k6-operator" / "k6.io_testruns.yaml"
OWN_SCHEMA = Path(__file__).parent / "fixtures" / "k6-operator" / "testrun.schema.yaml"
SECRET_VALUE = "s3cr3t-value-never-in-a-file"


def _strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused (as `kubectl apply` with strict field
    validation does), unless the schema preserves them."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def testrun_validator() -> jsonschema.Draft7Validator:
    if UPSTREAM_CRD.is_file():
        crd = yaml.safe_load(UPSTREAM_CRD.read_text(encoding="utf-8"))
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
        return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))
    schema = yaml.safe_load(OWN_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


@pytest.fixture
def staging(project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORCH_TEST_STAGING_URL", "http://staging.example.test")
    monkeypatch.setenv("ORCH_TEST_STAGING_SECRET", SECRET_VALUE)
    return project()


def _manifests(config_file: Path, parallelism: int) -> Any:
    config = load_config(config_file)
    run = resolve_run(config, "linkedin-scrape", "staging", None)
    rendered = render_script(config, run, config_file.parent / "rendered")
    return build_manifests(
        run,
        rendered,
        name="orch-test",
        parallelism=parallelism,
        settings=K8sSettings(),
        secret_names=sorted(run.secret_env),
        run_id="test",
    )


@pytest.mark.slow
@pytest.mark.parametrize("parallelism", [1, 4, 16])
def test_testrun_validates_against_the_crd(
    staging: Path, testrun_validator: jsonschema.Draft7Validator, parallelism: int
) -> None:
    manifests = _manifests(staging, parallelism)
    testrun = yaml.safe_load(to_yaml(manifests.testrun))
    errors = [e.message for e in testrun_validator.iter_errors(testrun)]
    assert errors == []
    spec = testrun["spec"]
    assert testrun["apiVersion"] == "k6.io/v1alpha1" and testrun["kind"] == "TestRun"
    assert spec["parallelism"] == parallelism
    assert spec["cleanup"] == "post"
    assert spec["script"]["configMap"] == {"name": "orch-test-script", "file": "linkedin-scrape.js"}
    assert "--out csv=/results/raw.csv.gz" in spec["arguments"]
    assert "--no-usage-report" in spec["arguments"]  # no statistics to Grafana Labs
    assert spec["runner"]["envFrom"] == [{"secretRef": {"name": "orch-test-secrets"}}]
    assert {e["name"] for e in spec["runner"]["env"]} >= {"ORCH_BASE_URL", "POD_NAME"}


def test_the_crd_check_catches_mistakes(
    staging: Path, testrun_validator: jsonschema.Draft7Validator
) -> None:
    testrun = _manifests(staging, 4).testrun
    for mutate in (
        lambda t: t["spec"].update(parallelism="4"),
        lambda t: t["spec"].update(cleanup="always"),
        lambda t: t["spec"].update(cleanUp="post"),
        lambda t: t["spec"].pop("script"),
        lambda t: t["spec"]["runner"]["env"].append({"value": "no name"}),
    ):
        broken = copy.deepcopy(testrun)
        mutate(broken)
        assert list(testrun_validator.iter_errors(broken)), broken["spec"]


def test_core_objects_validate_with_kubernetes_validate(staging: Path) -> None:
    manifests = _manifests(staging, 4)
    version = kubernetes_validate.latest_version()
    for obj in (manifests.configmap, manifests.secret):
        assert obj is not None
        kubernetes_validate.validate(yaml.safe_load(to_yaml(obj)), version, strict=True)
    broken = copy.deepcopy(manifests.configmap)
    broken["data"]["x"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


@pytest.mark.slow
def test_flattened_script_loads_in_real_k6(staging: Path, tmp_path: Path) -> None:
    manifests = _manifests(staging, 1)
    data = manifests.configmap["data"]
    assert "linkedin-scrape.js" in data
    assert flat_key("k6_scripts/auth.js") in data
    assert flat_key("k6_scripts/data/linkedin-profiles.json") in data
    script = data["linkedin-scrape.js"]
    assert "./k6_scripts/" not in script
    assert "from './k6_scripts__auth.js'" in script
    assert 'open("./k6_scripts__data__linkedin-profiles.json")' in script
    # One flat folder, as the operator mounts the ConfigMap at /test: k6 resolves every
    # import and open() of it (inspect runs the init code; it sends no request).
    flat = tmp_path / "test"
    flat.mkdir()
    for key, text in data.items():
        (flat / key).write_text(text, encoding="utf-8")
    done = subprocess.run(
        [str(find_k6(None).path), "inspect", str(flat / "linkedin-scrape.js")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "linkedin_scrape" in json.loads(done.stdout)["scenarios"]
    # The unflattened script does not load from a flat folder: the check above means it.
    (flat / "linkedin-scrape.js").write_text(
        (staging.parent / "rendered" / "linkedin-scrape.js").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(find_k6(None).path), "inspect", str(flat / "linkedin-scrape.js")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0


def test_flatten_rewrites_relative_references_between_helpers(tmp_path: Path) -> None:
    (tmp_path / "k6_scripts" / "lib").mkdir(parents=True)
    (tmp_path / "main.js").write_text(
        "import { a } from './k6_scripts/lib/a.js';\nimport http from 'k6/http';\n",
        encoding="utf-8",
    )
    (tmp_path / "k6_scripts" / "lib" / "a.js").write_text(
        "import { b } from '../b.js';\nexport const a = open(\"../b.js\") + './not/a/file';\n",
        encoding="utf-8",
    )
    (tmp_path / "k6_scripts" / "b.js").write_text("export const b = 1;\n", encoding="utf-8")
    data = flatten_script(tmp_path, "main.js")
    assert data["main.js"].startswith("import { a } from './k6_scripts__lib__a.js';")
    assert "import http from 'k6/http'" in data["main.js"]
    helper = data["k6_scripts__lib__a.js"]
    assert "from './k6_scripts__b.js'" in helper
    assert 'open("./k6_scripts__b.js")' in helper
    assert "'./not/a/file'" in helper


def test_dry_run_writes_manifests_and_no_secret(
    staging: Path, testrun_validator: jsonschema.Draft7Validator
) -> None:
    result = CliRunner().invoke(
        main,
        ["run", "linkedin-scrape", "--env", "staging", "--runner", "k8s", "--parallelism", "16",
         "--dry-run", "--config", str(staging)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    folder = run_dir / "k8s"
    assert sorted(p.name for p in folder.iterdir()) == [
        "configmap.yaml",
        "secret.yaml",
        "testrun.yaml",
    ]
    testrun = yaml.safe_load((folder / "testrun.yaml").read_text(encoding="utf-8"))
    assert list(testrun_validator.iter_errors(testrun)) == []
    assert testrun["spec"]["parallelism"] == 16
    secret = yaml.safe_load((folder / "secret.yaml").read_text(encoding="utf-8"))
    assert set(secret["stringData"]) == {"WEBHOOK_SECRET"}
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET_VALUE not in path.read_text(encoding="utf-8", errors="replace"), path
    assert SECRET_VALUE not in result.output
    assert '--from-file=WEBHOOK_SECRET=<(printf %s "$ORCH_TEST_STAGING_SECRET")' in result.output
    assert f"kubectl apply -f {folder / 'testrun.yaml'}" in result.output
    manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert manifest["outcome"] == "dry_run" and manifest["exit_code"] == 0


def _kubeconfig(tmp_path: Path, context: str, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        ),
        encoding="utf-8",
    )
    return path


def test_production_cluster_contexts_are_refused(
    project: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = project(extra_yaml="production:\n  hosts: [api.acme.example, k8s.acme.example]\n")
    config = load_config(config_file)
    guard_context(config, ClusterContext("staging-eu", "https://k8s.staging.example:6443"))
    for context in (
        ClusterContext("staging-eu", "https://K8S.ACME.EXAMPLE.:6443"),
        ClusterContext("gke_acme_prod-eu", "https://10.0.0.1"),
        ClusterContext("admin@api.acme.example", "https://10.0.0.1"),
    ):
        with pytest.raises(RefusedError):
            guard_context(config, context)

    # Through the CLI: the kubectl context is read and refused before anything is written.
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, "prod", "https://127.0.0.1:9")))
    monkeypatch.setenv("ORCH_TEST_STAGING_URL", "http://staging.example.test")
    monkeypatch.setenv("ORCH_TEST_STAGING_SECRET", SECRET_VALUE)
    result = CliRunner().invoke(
        main,
        ["run", "linkedin-scrape", "--env", "staging", "--runner", "k8s", "--parallelism", "2",
         "--config", str(config_file)],
    )  # fmt: skip
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert "cluster context 'prod'" in result.output
    assert not (config_file.parent / "results").exists()


def test_live_path_reports_an_unreachable_cluster(
    staging: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cluster whose API server answers nowhere (a closed loopback port): kubectl fails on
    # its first apply and orch says so, exit 4, with no secret in the output.
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, "staging", "https://127.0.0.1:9")))
    result = CliRunner().invoke(
        main,
        ["run", "linkedin-scrape", "--env", "staging", "--runner", "k8s", "--parallelism", "2",
         "--config", str(staging)],
    )  # fmt: skip
    assert result.exit_code == ExitCode.SETUP, result.output
    assert "kubectl" in result.output and "apply" in result.output
    assert SECRET_VALUE not in result.output
