"""Pure helpers for running k6 in Docker: bind-mount sources, loopback URL rewriting, LF files.

Nothing here talks to a Docker engine, so every rule can be tested on any OS, Windows paths
included (with :class:`~pathlib.PureWindowsPath`).

Bind-mount sources on Windows. Docker Desktop runs Linux containers in a VM, but its API
proxy translates Windows host paths given in a container's ``HostConfig.Binds`` (the
``-v SRC:DST`` form, which the Docker SDK's ``volumes=`` produces) into the VM's view of the
drive (``/run/desktop/mnt/host/c/...`` under WSL 2). So orch passes the native Windows form,
``C:\\Users\\me\\my proj\\results\\run``, drive letter and backslashes, spaces as they are.
It does not use the ``Mounts`` API (``--mount``) for Windows paths: the engine validates
those sources as Linux paths and rejects ``C:\\...`` ("mount path must be absolute",
docker/docker-py#2661, docker/for-win#6700). The ``/c/Users/...`` form is a Docker Toolbox
and Git Bash habit that the WSL 2 backend does not resolve; :func:`posix_drive_path` builds it
for anyone who needs it, but orch does not use it. The Docker SDK (≥ 7) splits a
``C:\\...:/dst:ro`` bind at the right colon (it strips the drive with ``ntpath.splitdrive``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from orchestrator.core import SetupError

# Where the container sees its two folders; k6 runs with /results as its working directory.
SCRIPTS_MOUNT = "/scripts"
RESULTS_MOUNT = "/results"

DOCKER_DESKTOP_HOST = "host.docker.internal"

# scheme://[userinfo@]loopback-host followed by a port, path, query, fragment or the end.
_LOOPBACK_URL_RE = re.compile(
    r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s?#]*@)?)"
    r"(?P<host>localhost|127(?:\.\d{1,3}){3}|\[::1\])"
    r"(?=[:/?#\s\"']|$)",
    re.IGNORECASE,
)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def mount_source(path: PurePath) -> str:
    """The host path of a bind mount, in the form the Docker engine API accepts.

    POSIX paths are returned as they are. Windows paths must be absolute with a drive
    letter and come back as ``C:\\dir\\sub`` (upper-case drive, backslashes, no trailing
    separator), which Docker Desktop translates for its Linux VM. UNC and WSL network paths
    (``\\\\server\\share``, ``\\\\wsl$\\...``) are refused with a hint.
    """
    if isinstance(path, PureWindowsPath):
        return _windows_mount_source(path)
    if not path.is_absolute():
        raise ValueError(f"bind-mount source must be absolute: {path}")
    return str(PurePosixPath(path))


def _windows_mount_source(path: PureWindowsPath) -> str:
    if path.drive.startswith("\\\\") or path.drive.startswith("//"):
        raise SetupError(
            f"cannot bind-mount the network path {path} into a container; "
            "keep the project on a local drive such as C:\\, or run orch inside WSL"
        )
    if not (path.drive and path.root):
        raise ValueError(f"bind-mount source must be absolute with a drive letter: {path}")
    drive = path.drive[0].upper() + ":"
    rest = "\\".join(path.parts[1:])
    return f"{drive}\\{rest}"


def posix_drive_path(path: PureWindowsPath) -> str:
    """``C:\\Users\\me`` → ``/c/Users/me``: the Docker Toolbox / Git Bash form (unused by orch)."""
    source = _windows_mount_source(path)
    return "/" + source[0].lower() + source[2:].replace("\\", "/")


def bind_spec(source: PurePath, target: str, *, read_only: bool) -> str:
    """One ``HostConfig.Binds`` entry: ``SOURCE:TARGET:ro|rw``."""
    if not target.startswith("/"):
        raise ValueError(f"container path must be absolute: {target}")
    return f"{mount_source(source)}:{target}:{'ro' if read_only else 'rw'}"


def has_loopback_url(text: str) -> bool:
    """Whether ``text`` contains a URL whose host is localhost, 127.x.x.x or [::1]."""
    return _LOOPBACK_URL_RE.search(text) is not None


def rewrite_loopback_urls(text: str, host: str = DOCKER_DESKTOP_HOST) -> str:
    """Replace the host of every loopback URL in ``text`` with ``host``, keeping the rest."""
    return _LOOPBACK_URL_RE.sub(lambda m: m.group("prefix") + host, text)


def is_loopback_address(address: str) -> bool:
    """Whether a ``host:port`` address (k6's ``--address``) is on loopback."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.lower() in _LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True)
class NetworkPlan:
    """How the container reaches the host's loopback and how orch reaches k6's REST API."""

    network_mode: str | None  # "host", or None for the engine's default network
    env: dict[str, str]  # the container environment, loopback URLs rewritten if needed
    api_address: str | None  # --address as k6 sees it inside the container
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)  # published ports
    notes: list[str] = field(default_factory=list)  # what was done, for the run log


def plan_network(
    env: Mapping[str, str], api_address: str | None, *, docker_desktop: bool
) -> NetworkPlan:
    """Decide networking for one run. Notes name variables only, never their values.

    - Linux engine: host networking when a variable holds a loopback URL or k6's REST API
      listens on loopback, so the container shares the host's 127.0.0.1.
    - Docker Desktop (Windows, macOS): loopback URLs are rewritten to
      ``host.docker.internal``, and a loopback REST API is published on the same host port.
    """
    loopback_vars = sorted(name for name, value in env.items() if has_loopback_url(value))
    api_on_loopback = api_address is not None and is_loopback_address(api_address)
    if not docker_desktop:
        if not (loopback_vars or api_on_loopback):
            return NetworkPlan(None, dict(env), api_address)
        why = []
        if loopback_vars:
            why.append("loopback URLs in " + ", ".join(loopback_vars))
        if api_on_loopback:
            why.append(f"k6 REST API on {api_address}")
        note = "docker: host networking, so the container reaches the host's loopback (" + (
            "; ".join(why) + ")"
        )
        return NetworkPlan("host", dict(env), api_address, notes=[note])

    new_env = {name: rewrite_loopback_urls(value) for name, value in env.items()}
    notes = []
    if loopback_vars:
        notes.append(
            f"docker: Docker Desktop: loopback URLs rewritten to {DOCKER_DESKTOP_HOST} in "
            + ", ".join(loopback_vars)
        )
    ports: dict[str, tuple[str, int]] = {}
    inner_api = api_address
    if api_address is not None and api_on_loopback:
        port = int(api_address.rsplit(":", 1)[1])
        inner_api = f"0.0.0.0:{port}"
        ports[f"{port}/tcp"] = ("127.0.0.1", port)
        notes.append(f"docker: Docker Desktop: k6 REST API published on 127.0.0.1:{port}")
    return NetworkPlan(None, new_env, inner_api, ports=ports, notes=notes)


def write_lf(path: Path, text: str) -> None:
    """Write ``text`` with LF line endings on every OS (k6 in Linux containers reads it)."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(normalised)
