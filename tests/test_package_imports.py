"""What importing a package loads: the report's path stays off the configuration stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

import orchestrator.config as config


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


def test_every_public_name_of_the_configuration_package_resolves() -> None:
    for name in config.__all__:
        assert getattr(config, name) is not None, name
    assert set(dir(config)) >= set(config.__all__)
    with pytest.raises(AttributeError, match="not_a_name"):
        config.not_a_name  # noqa: B018
