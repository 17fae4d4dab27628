"""`orch doctor`: what this machine and config can do, and what they still lack."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from orchestrator.config import DEFAULT_DOCKER_IMAGE, OrchConfig, config_path, load_config
from orchestrator.core import OrchError
from orchestrator.execution import docker
from orchestrator.execution.k6bin import INSTALL_HINT, find_k6
from orchestrator.target import required_variables


@dataclass
class Diagnosis:
    """Findings by section, the missing pieces, and whether a run can start."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    ready: bool = False


def diagnose(
    config_file: str | None, *, k6_path: str | None = None, clean_containers: bool = False
) -> Diagnosis:
    """Check k6, Docker, the config and each environment's variables."""
    found = Diagnosis()
    native_ok = False
    try:
        binary = find_k6(k6_path, require_supported=False)
        verdict = "ok" if binary.supported else "too old (orch needs v0.47.0 or newer)"
        native_ok = binary.supported
        found.sections["k6"] = [
            f"path: {binary.path} (via {binary.found_via})",
            f"version: {binary.version_text}: {verdict}",
        ]
        if not binary.supported:
            found.missing.append(f"a k6 v0.47.0 or newer: {INSTALL_HINT}")
    except OrchError as exc:
        found.sections["k6"] = [exc.message]

    config = None
    config_ok = False
    try:
        config = load_config(config_file)
        config_ok = True
        lines = [f"file: {config.source}: valid"]
        for name, env in config.environments.items():
            needed = [var for var, _ in required_variables(config, name)]
            absent = [v for v in needed if not os.environ.get(v)]
            state = "ready" if not absent else f"needs {', '.join(absent)}"
            if env.kind == "production":
                state = "refused by every command (kind production)"
            lines.append(f"environment {name} ({env.kind}): {state}")
            if absent and name == config.defaults.environment:
                found.missing.append(f"environment variables for {name}: {', '.join(absent)}")
        lines += _production_lines(config)
        found.sections["config"] = lines
    except OrchError as exc:
        found.sections["config"] = [exc.message]
        found.missing.append(f"a valid config ({config_path(config_file)})")

    image = (
        config.environment(config.defaults.environment).docker_image
        if config is not None
        else DEFAULT_DOCKER_IMAGE
    )
    docker_lines, docker_ok = _docker_section(image, clean_containers)
    found.sections["docker"] = docker_lines

    if native_ok:
        runner = "native (a usable k6 is installed)"
    elif docker_ok:
        runner = f"docker ({image}), because no usable native k6 was found"
    else:
        runner = "none: install k6 or start Docker with the k6 image"
        found.missing.append(f"a runner: {INSTALL_HINT}")
    found.sections["runner auto would choose"] = [runner]
    found.ready = config_ok and (native_ok or docker_ok) and not found.missing
    return found


def _production_lines(config: OrchConfig) -> list[str]:
    """What production is, or a loud warning that nothing protects against it."""
    try:
        production = config.production_hosts()
    except OrchError as exc:
        return [f"production: {exc.message}"]
    if production.declared:
        shown = sorted(production.names) + [str(n) for n in production.networks]
        return [f"production (refused everywhere): {', '.join(shown)}"]
    if any(env.kind != "local" for env in config.environments.values()):
        return [
            "WARNING: NO PRODUCTION IS DECLARED, so orch cannot tell it apart from staging: "
            "declare it under production: or as an environment of kind production "
            "(docs/staging.md)"
        ]
    return ["production: none declared (only local environments: loopback only)"]


def _docker_section(image: str, clean: bool) -> tuple[list[str], bool]:
    """Engine, image and leftovers; never fails, only reports."""
    lines: list[str] = []
    status = docker.docker_status()
    if not status.reachable:
        return [f"engine: not reachable ({status.error})"], False
    lines.append(
        f"engine: reachable, version {status.version}"
        + (" (Docker Desktop)" if status.docker_desktop else "")
    )
    img = docker.image_status(image)
    usable = bool(img.present and img.supported)
    if img.present:
        lines.append(
            f"image {image}: present, k6 {img.k6_version}" + ("" if img.supported else " (too old)")
        )
    else:
        lines.append(f"image {image}: absent ({img.error or 'not pulled yet'})")
    leftovers = docker.leftover_containers()
    if leftovers and clean:
        removed = docker.remove_leftovers()
        lines.append(f"leftover orch containers: removed {removed}")
    elif leftovers:
        lines.append(
            f"leftover orch containers: {len(leftovers)} "
            f"(remove them with `orch doctor --clean-containers`)"
        )
    return lines, usable
