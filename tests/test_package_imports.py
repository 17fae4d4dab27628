"""What importing a package loads: the report's path stays off the configuration stack."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from k6_outputs import K6Run, real_runs

import orchestrator.config as config
import orchestrator.target as target
from orchestrator.execution.report_worker import WARM_MODULES


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement``."""
    code = f"{statement}; import sys; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return set(done.stdout.split())


def test_the_results_package_does_not_load_the_configuration_models() -> None:
    loaded = loaded_after("import orchestrator.results")
    assert "orchestrator.config.k6_options" in loaded  # what the figures need
    assert not {"orchestrator.config.model", "yaml", "dotenv"} & loaded


def test_the_sandbox_child_loads_neither_the_configuration_model_nor_other_targets() -> None:
    loaded = loaded_after("import orchestrator.target.sandbox_child")
    assert "orchestrator.config.sandbox_settings" in loaded  # what the sandbox needs
    assert not {
        "orchestrator.config.model", "orchestrator.target.verify", "orchestrator.target.users",
        "orchestrator.target.readiness", "orchestrator.db", "yaml",
    } & loaded  # fmt: skip


@pytest.mark.parametrize("package", [config, target])
def test_every_public_name_of_a_lazy_package_resolves(package: ModuleType) -> None:
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert set(dir(package)) >= set(package.__all__)
    with pytest.raises(AttributeError, match="not_a_name"):
        package.not_a_name  # noqa: B018


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, K6Run]:
    """The real k6 runs the results tests share (made once per session)."""
    return real_runs(tmp_path_factory.getbasetemp() / "k6-runs")


def test_the_report_worker_warms_only_what_a_run_s_report_imports(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    """Each library the worker imports ahead is one the compaction and the report (charts
    drawn, figures measured) load; pandas, which they do not use, cost the worker 0.3 s of
    CPU and 33 MB."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copyfile(runs["normal"].csv, run_dir / "raw.csv")
    shutil.copyfile(runs["normal"].summary_export, run_dir / "summary.json")
    loaded = loaded_after(
        "import os; os.environ['ORCH_CACHE_DIR'] = 'off'; from pathlib import Path; "
        "from orchestrator.results import build_report, finalize_raw; "
        f"finalize_raw(Path({str(run_dir)!r})); build_report(Path({str(run_dir)!r}))"
    )
    assert (run_dir / "raw.parquet").is_file() and (run_dir / "charts" / "active_vus.png").is_file()
    warmed = {name.partition(":")[0] for name in WARM_MODULES}
    assert warmed <= loaded, warmed - loaded
