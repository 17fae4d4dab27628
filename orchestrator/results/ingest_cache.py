"""The figures of a raw file, kept per user so `orch report` does not read it twice.

:func:`cached_ingest` is :func:`~orchestrator.results.ingest.ingest_raw` remembered: the
key is the raw file's SHA-256, the arguments that change the figures, orch's version, the
source of the modules that compute them and DuckDB's version. A hit skips importing DuckDB
and scanning the file (0.25 s of the 0.6 s `orch report` took on a smoke run's folder).

The entries live in the user's own cache folder (``$XDG_CACHE_HOME/orch/figures``,
``~/.cache/orch/figures``; ``ORCH_CACHE_DIR`` moves it, ``ORCH_CACHE_DIR=off`` turns it
off), never in the run folder: a folder someone hands over is always measured from its raw
points. The folder is used only when it is this user's and nobody else can write to it.
An entry that cannot be read, does not parse or does not round-trip exactly is ignored;
a cache that cannot be written is no cache, not an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import __version__
from orchestrator.results import ingest, summary
from orchestrator.results.ingest import RawAggregates, ingest_raw

if TYPE_CHECKING:
    from pydantic import TypeAdapter

CACHE_ENV = "ORCH_CACHE_DIR"
MAX_ENTRIES = 256  # the oldest entries beyond this are removed when one is written
_FORMAT = 1  # bump when the entry's layout changes


def cache_dir() -> Path | None:
    """The figures cache folder, or None when it is turned off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        if configured.strip().lower() in ("", "off", "0", "none"):
            return None
        return Path(configured).expanduser() / "figures"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orch" / "figures"


def cached_ingest(
    path: Path,
    *,
    thresholds: dict[str, list[str]] | None = None,
    duration_s: float | None = None,
    metric_types: dict[str, str] | None = None,
) -> RawAggregates:
    """:func:`ingest_raw` of ``path``, from the cache when the same file was read with the
    same arguments by the same code before."""
    folder = _usable_dir(cache_dir())
    if folder is None:
        return ingest_raw(path, thresholds=thresholds, duration_s=duration_s,
                          metric_types=metric_types)  # fmt: skip
    try:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:  # ingest_raw reports an unreadable file in its own words
        return ingest_raw(path, thresholds=thresholds, duration_s=duration_s,
                          metric_types=metric_types)  # fmt: skip
    key = _key(digest, thresholds, duration_s, metric_types)
    entry = folder / f"{key}.json"
    hit = _read_entry(entry, path)
    if hit is not None:
        return hit
    agg = ingest_raw(path, thresholds=thresholds, duration_s=duration_s,
                     metric_types=metric_types)  # fmt: skip
    _write_entry(folder, entry, agg)
    return agg


def _usable_dir(folder: Path | None) -> Path | None:
    """``folder``, made if missing (mode 0700); None unless it is a real folder of this user
    that no one else can write to."""
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    if sys.platform != "win32" and (
        info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        return None
    return folder


def prepare() -> None:
    """Build what the first lookup needs (0.03 s): the report worker calls it while k6
    runs."""
    _adapter()
    _code_version()


@cache
def _code_version() -> str:
    """What computes the figures: orch's version, the source of the modules and DuckDB's
    version (read from its metadata, not by importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    sha = hashlib.sha256(f"{_FORMAT}\0{__version__}\0".encode())
    for module in (ingest, summary):
        sha.update(Path(module.__file__ or "").read_bytes())
    try:
        sha.update(version("duckdb").encode())
    except PackageNotFoundError:  # pragma: no cover - a dependency of orch
        sha.update(b"?")
    return sha.hexdigest()


def _key(
    digest: str,
    thresholds: dict[str, list[str]] | None,
    duration_s: float | None,
    metric_types: dict[str, str] | None,
) -> str:
    arguments = json.dumps(
        [digest, _code_version(), thresholds or {}, duration_s, metric_types or {}],
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(arguments.encode()).hexdigest()


@cache
def _adapter() -> TypeAdapter[RawAggregates]:
    from pydantic import TypeAdapter

    return TypeAdapter(RawAggregates)


def _dump(agg: RawAggregates) -> bytes:
    """An entry: the aggregates without their path, ``measured`` as a list (JSON keys are
    strings, its keys are pairs)."""
    plain: dict[str, Any] = json.loads(_adapter().dump_json(agg))
    plain.pop("path", None)
    plain["measured"] = [[k[0], k[1], v] for k, v in agg.measured.items()]
    return json.dumps(plain, separators=(",", ":")).encode()


def _load(data: bytes, path: Path) -> RawAggregates:
    plain = json.loads(data)
    measured = {(str(k), str(e)): v for k, e, v in plain.pop("measured")}
    agg = _adapter().validate_python({**plain, "path": path, "measured": {}})
    agg.measured = measured
    return agg


def _read_entry(entry: Path, path: Path) -> RawAggregates | None:
    try:
        agg = _load(entry.read_bytes(), path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError):  # unreadable or not an entry
        with contextlib.suppress(OSError):
            entry.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # the oldest entries are the least recently used
    return agg


def _write_entry(folder: Path, entry: Path, agg: RawAggregates) -> None:
    """Keep ``agg`` under ``entry`` if it reads back equal (a NaN, which JSON cannot hold,
    does not), then remove the oldest entries beyond :data:`MAX_ENTRIES`."""
    try:
        data = _dump(agg)
        if _load(data, agg.path) != agg:
            return
    except (ValueError, TypeError):
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        return
