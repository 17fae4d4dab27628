"""The embedded sandbox's child process: ``python -m orchestrator.target.sandbox_child``.

A module of its own that nothing imports: running :mod:`orchestrator.target.sandbox` itself
with ``-m`` would load it twice, since the package imports it.
"""

from __future__ import annotations

import sys

from orchestrator.target.sandbox import serve_from_environment

if __name__ == "__main__":
    sys.exit(serve_from_environment())
