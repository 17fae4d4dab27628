"""Where orch's own shipped files live."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # orchestrator/
PROJECT_ROOT = PACKAGE_DIR.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
K6_SCRIPTS_DIR = PROJECT_ROOT / "k6_scripts"
DEFAULT_CONFIG = PROJECT_ROOT / "orch.yaml"
