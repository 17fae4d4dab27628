"""Pure Docker helpers: Windows bind-mount sources, loopback rewriting, networking, LF files."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from orchestrator.core import SetupError
from orchestrator.execution.docker_paths import (
    bind_spec,
    has_loopback_url,
    mount_source,
    plan_network,
    posix_drive_path,
    rewrite_loopback_urls,
    write_lf,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (r"C:\Users\me\my proj\results\run", r"C:\Users\me\my proj\results\run"),
        (r"c:\Users\me\proj", r"C:\Users\me\proj"),
        (
            "C:/Users/me/my proj/results/2025-01-01T00-00-00Z_x_local/",
            r"C:\Users\me\my proj\results\2025-01-01T00-00-00Z_x_local",
        ),
        (r"D:\work\k6 tests\scripts", r"D:\work\k6 tests\scripts"),
        ("D:\\", "D:\\"),
    ],
)
def test_windows_paths_keep_drive_and_spaces(given: str, expected: str) -> None:
    assert mount_source(PureWindowsPath(given)) == expected


def test_windows_bind_spec_splits_at_the_container_colon() -> None:
    spec = bind_spec(
        PureWindowsPath(r"C:\Users\me\my proj\results\run"), "/results", read_only=False
    )
    assert spec == r"C:\Users\me\my proj\results\run:/results:rw"
    # what the Docker SDK (>= 7) does with it: drive split off first, then the colons
    import ntpath

    drive, rest = ntpath.splitdrive(spec)
    source, target, mode = rest.split(":")
    assert (drive + source, target, mode) == (r"C:\Users\me\my proj\results\run", "/results", "rw")


def test_windows_relative_and_network_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        mount_source(PureWindowsPath(r"results\run"))
    with pytest.raises(ValueError, match="absolute"):
        mount_source(PureWindowsPath(r"\Users\me"))  # no drive letter
    with pytest.raises(SetupError, match="local drive"):
        mount_source(PureWindowsPath(r"\\server\share\results"))
    with pytest.raises(SetupError, match="WSL"):
        mount_source(PureWindowsPath(r"\\wsl$\Ubuntu\home\me"))


def test_posix_drive_form_for_toolbox_users() -> None:
    assert posix_drive_path(PureWindowsPath(r"C:\Users\me\my proj")) == "/c/Users/me/my proj"
    assert posix_drive_path(PureWindowsPath("e:/data")) == "/e/data"


def test_posix_paths_pass_through_and_read_only_is_marked() -> None:
    assert mount_source(PurePosixPath("/home/me/my proj")) == "/home/me/my proj"
    assert bind_spec(PurePosixPath("/srv/s"), "/scripts", read_only=True) == "/srv/s:/scripts:ro"
    with pytest.raises(ValueError):
        mount_source(PurePosixPath("relative/dir"))
    with pytest.raises(ValueError):
        bind_spec(PurePosixPath("/srv/s"), "scripts", read_only=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://localhost:8765", "http://host.docker.internal:8765"),
        ("https://127.0.0.1/api?x=1", "https://host.docker.internal/api?x=1"),
        ("http://[::1]:80/", "http://host.docker.internal:80/"),
        ("http://127.10.0.3", "http://host.docker.internal"),
        ("postgres://user:pw@localhost:5432/db", "postgres://user:pw@host.docker.internal:5432/db"),
        (
            "a=http://localhost:1,b=http://LOCALHOST:2",
            "a=http://host.docker.internal:1,b=http://host.docker.internal:2",
        ),
    ],
)
def test_loopback_urls_are_rewritten(text: str, expected: str) -> None:
    assert has_loopback_url(text)
    assert rewrite_loopback_urls(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://staging.example.com",
        "http://localhost.example.com/",
        "http://127.0.0.1.nip.io/",
        "http://my-localhost:80",
        "localhost:8080",  # no scheme: not a URL
        "plain secret",
    ],
)
def test_other_values_are_left_alone(text: str) -> None:
    assert not has_loopback_url(text)
    assert rewrite_loopback_urls(text) == text


def test_linux_engine_uses_host_networking_for_loopback_targets() -> None:
    env = {"BASE_URL": "http://127.0.0.1:8765", "API_KEY": "s3cr3t-value"}
    plan = plan_network(env, "127.0.0.1:6565", docker_desktop=False)
    assert plan.network_mode == "host"
    assert plan.env == env
    assert plan.api_address == "127.0.0.1:6565"
    assert plan.ports == {}
    assert "BASE_URL" in plan.notes[0] and "host networking" in plan.notes[0]
    assert "s3cr3t" not in " ".join(plan.notes)


def test_linux_engine_keeps_default_network_for_remote_targets() -> None:
    plan = plan_network({"BASE_URL": "https://staging.example.com"}, None, docker_desktop=False)
    assert plan.network_mode is None
    assert plan.notes == []


def test_docker_desktop_rewrites_urls_and_publishes_the_api() -> None:
    env = {"BASE_URL": "http://localhost:8765", "DSN": "postgres://u:hunter2@127.0.0.1/db"}
    plan = plan_network(env, "127.0.0.1:6565", docker_desktop=True)
    assert plan.network_mode is None
    assert plan.env["BASE_URL"] == "http://host.docker.internal:8765"
    assert plan.env["DSN"] == "postgres://u:hunter2@host.docker.internal/db"
    assert plan.api_address == "0.0.0.0:6565"
    assert plan.ports == {"6565/tcp": ("127.0.0.1", 6565)}
    log = "\n".join(plan.notes)
    assert "host.docker.internal" in log and "BASE_URL, DSN" in log
    assert "hunter2" not in log


def test_write_lf_writes_lf_only(tmp_path: Path) -> None:
    target = tmp_path / "script.js"
    write_lf(target, "import http from 'k6/http';\r\nexport default function () {}\r\n")
    assert target.read_bytes() == b"import http from 'k6/http';\nexport default function () {}\n"
