"""What orch knows of k6's scenario options: duration syntax, each option's type, VU counts.

The one home of k6's rules in orch. A load profile is checked against them when the config
is read (:func:`check_options`), so ``rate: fast`` or ``duration: banana`` is a config error
naming the key before anything starts, instead of a k6 error after the sandbox started. The
rules are k6's own (v1.x, checked with ``k6 inspect``):

- A duration is a Go duration (``1s``, ``500ms``, ``1m30s``, ``1.5h``, ``-1s``; units
  ``ns us µs ms s m h``), optionally led by whole days (``2d``, ``1d12h``); a plain number,
  as a number or a string, is **milliseconds** (``duration: 2000`` is 2 s).
- Counts (``vus``, ``rate``, ``maxVUs``, …) are whole numbers; each executor has its own
  minimums (``rate`` > 0, ``maxVUs`` >= ``preAllocatedVUs``, ``duration`` >= 1s, …).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

# k6 executors and the options each accepts (besides the common ones).
EXECUTOR_OPTIONS: dict[str, set[str]] = {
    "shared-iterations": {"vus", "iterations", "maxDuration"},
    "per-vu-iterations": {"vus", "iterations", "maxDuration"},
    "constant-vus": {"vus", "duration"},
    "ramping-vus": {"startVUs", "stages", "gracefulRampDown"},
    "constant-arrival-rate": {"rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"},
    "ramping-arrival-rate": {"startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"},
    "externally-controlled": {"vus", "maxVUs", "duration"},
}
COMMON_EXECUTOR_OPTIONS = {"startTime", "gracefulStop", "env", "tags"}
ARRIVAL_RATE_EXECUTORS = frozenset({"constant-arrival-rate", "ramping-arrival-rate"})

DURATION_EXAMPLES = "e.g. 30s, 500ms, 1m30s, 2h, 1d, or a number of milliseconds"

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                 "m": 60.0, "h": 3600.0}  # fmt: skip
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_GO_DURATION = re.compile(rf"[+-]?(?:{_NUMBER}(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_PLAIN_NUMBER = re.compile(rf"[+-]?{_NUMBER}(?:[eE][+-]?\d+)?")
_DAYS = re.compile(r"([+-]?\d+)d(.*)")


class K6OptionError(ValueError):
    """Load-profile options k6 would refuse: ``problems`` lists (option key, what is wrong).

    The config loader shows each as ``scenarios.<name>.profiles.<name>.<key>: <problem>``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {problem}" for key, problem in problems))
        self.problems = problems


def _go_duration(text: str) -> float:
    if not _GO_DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a k6 duration ({DURATION_EXAMPLES})")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _GO_PART.findall(text))
    return -seconds if text.startswith("-") else seconds


def parse_duration(value: Any) -> float:
    """Seconds in a k6 duration, read as k6 reads it (numbers are milliseconds).

    Raises :class:`ValueError` saying what k6 accepts for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a k6 duration ({DURATION_EXAMPLES})")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a k6 duration ({DURATION_EXAMPLES})")
        return float(value) / 1000.0
    if _PLAIN_NUMBER.fullmatch(value):
        return float(value) / 1000.0
    days = _DAYS.fullmatch(value)
    if days is None:
        return _go_duration(value)
    whole_days, rest = int(days.group(1)), days.group(2)
    hours = _go_duration(rest) if rest else 0.0
    if hours < 0:
        raise ValueError(f"{value!r} is not a k6 duration ({DURATION_EXAMPLES})")
    return whole_days * 86400.0 + (-hours if whole_days < 0 else hours)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a whole number, not {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"must be a whole number, not {value!r}")
    return int(value)


def max_vus(options: dict[str, Any]) -> int | None:
    """The most VUs a k6 scenario can use, or None when its options do not say.

    Arrival-rate executors: ``maxVUs`` (default ``preAllocatedVUs``); ``ramping-vus``: the
    largest of ``startVUs`` and the stage targets; the others: ``vus`` (and ``maxVUs``).
    Several k6 scenarios by name (a mix): the sum of theirs.
    """
    if "executor" not in options:
        each = [max_vus(v) for v in options.values() if isinstance(v, dict) and "executor" in v]
        return sum(v for v in each if v) if any(each) else None
    executor = options.get("executor")
    if executor in ARRIVAL_RATE_EXECUTORS:
        keys = ["maxVUs", "preAllocatedVUs"]
        candidates = [options.get(k) for k in keys]
    elif executor == "ramping-vus":
        stages = options.get("stages") or []
        candidates = [options.get("startVUs")]
        candidates += [s.get("target") for s in stages if isinstance(s, dict)]
    else:
        candidates = [options.get("vus"), options.get("maxVUs")]
    numbers = [int(c) for c in candidates if isinstance(c, int | float) and not isinstance(c, bool)]
    return max(numbers) if numbers else None


def planned_seconds(options: dict[str, Any]) -> float | None:
    """How long a k6 scenario is planned to last (from ``startTime``), or None when it ends
    by iterations instead. Several k6 scenarios by name (a mix): the longest (None when one
    of them ends by iterations)."""
    if "executor" not in options:
        each = [
            planned_seconds(v) for v in options.values() if isinstance(v, dict) and "executor" in v
        ]
        if not each or any(v is None for v in each):
            return None
        return max(v for v in each if v is not None)
    start = parse_duration(options.get("startTime", 0))
    if "duration" in options:
        return start + parse_duration(options["duration"])
    if "stages" in options:
        return start + sum(parse_duration(s.get("duration", 0)) for s in options["stages"])
    return None


# --- checking a profile's options -------------------------------------------------------


def _duration_at_least(minimum: float, words: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if parse_duration(value) < minimum:
            raise ValueError(f"{value!r} {words}")

    return check


def _whole_at_least(minimum: int) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if _whole(value) < minimum:
            raise ValueError(f"must be {minimum} or more, not {value!r}")

    return check


def _string_map(value: Any) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError('must map names to strings (quote numbers: "1")')


_NOT_NEGATIVE = _duration_at_least(0.0, "is negative")
_AT_LEAST_1S = _duration_at_least(1.0, "is shorter than k6's minimum of 1s")
_POSITIVE = _duration_at_least(1e-9, "must be more than 0")

# option -> check, per executor (k6's own minimums); "stages" is checked apart.
_CHECKS: dict[str, dict[str, Callable[[Any], None]]] = {
    "shared-iterations": {"vus": _whole_at_least(1), "iterations": _whole_at_least(1),
                          "maxDuration": _AT_LEAST_1S},
    "per-vu-iterations": {"vus": _whole_at_least(1), "iterations": _whole_at_least(1),
                          "maxDuration": _AT_LEAST_1S},
    "constant-vus": {"vus": _whole_at_least(1), "duration": _AT_LEAST_1S},
    "ramping-vus": {"startVUs": _whole_at_least(0), "gracefulRampDown": _NOT_NEGATIVE},
    "constant-arrival-rate": {"rate": _whole_at_least(1), "timeUnit": _POSITIVE,
                              "duration": _AT_LEAST_1S, "preAllocatedVUs": _whole_at_least(0),
                              "maxVUs": _whole_at_least(0)},
    "ramping-arrival-rate": {"startRate": _whole_at_least(0), "timeUnit": _POSITIVE,
                             "preAllocatedVUs": _whole_at_least(0),
                             "maxVUs": _whole_at_least(0)},
    "externally-controlled": {"vus": _whole_at_least(0), "maxVUs": _whole_at_least(0),
                              "duration": _NOT_NEGATIVE},
}  # fmt: skip
_COMMON_CHECKS: dict[str, Callable[[Any], None]] = {
    "startTime": _NOT_NEGATIVE, "gracefulStop": _NOT_NEGATIVE, "env": _string_map,
    "tags": _string_map,
}  # fmt: skip
# Options k6 refuses to run without (it has no default for them).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "constant-vus": ("duration",),
    "ramping-vus": ("stages",),
    "constant-arrival-rate": ("rate", "duration", "preAllocatedVUs"),
    "ramping-arrival-rate": ("stages", "preAllocatedVUs"),
    "externally-controlled": ("duration",),
}


def _stage_problems(stages: Any) -> list[tuple[str, str]]:
    if not isinstance(stages, list) or not stages:
        return [("stages", "must be a list of at least one {duration, target}")]
    found: list[tuple[str, str]] = []
    for index, stage in enumerate(stages):
        where = f"stages.{index}"
        if not isinstance(stage, dict):
            found.append((where, "must be a mapping with duration and target"))
            continue
        unknown = sorted(set(stage) - {"duration", "target"})
        if unknown:
            found.append((f"{where}.{unknown[0]}", "unknown key (a stage has duration, target)"))
        for key, check in (("duration", _NOT_NEGATIVE), ("target", _whole_at_least(0))):
            if key not in stage:
                found.append((f"{where}.{key}", "required key is missing"))
                continue
            try:
                check(stage[key])
            except ValueError as exc:
                found.append((f"{where}.{key}", str(exc)))
    return found


def option_problems(executor: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """(option key, what is wrong) for every option of a known executor that k6 would
    refuse: a wrong type, a bad duration, a value under k6's minimum, a missing option."""
    checks = {**_COMMON_CHECKS, **_CHECKS.get(executor, {})}
    found: list[tuple[str, str]] = []
    for key in _REQUIRED.get(executor, ()):
        if key not in options:
            found.append((key, f"required by executor {executor!r}"))
    for key, value in options.items():
        if key == "stages":
            found += _stage_problems(value)
            continue
        check = checks.get(key)
        if check is None:
            continue
        try:
            check(value)
        except ValueError as exc:
            found.append((key, str(exc)))
    bad = {key.split(".")[0] for key, _ in found}
    pool = {"maxVUs", "preAllocatedVUs"}
    if (
        pool <= set(options)
        and not bad & pool
        and _whole(options["maxVUs"]) < _whole(options["preAllocatedVUs"])
    ):
        found.append(
            ("maxVUs", f"{options['maxVUs']!r} is less than preAllocatedVUs "
                       f"({options['preAllocatedVUs']!r})")
        )  # fmt: skip
    if executor == "shared-iterations" and not bad & {"vus", "iterations"}:
        vus, iterations = _whole(options.get("vus", 1)), _whole(options.get("iterations", 1))
        if iterations < vus:
            found.append(("iterations", f"{iterations} is less than vus ({vus})"))
    if executor == "externally-controlled" and not bad & {"vus", "maxVUs"}:
        vus, most = _whole(options.get("vus", 0)), _whole(options.get("maxVUs", 0))
        if "maxVUs" in options and vus > most:
            found.append(("vus", f"{vus} is more than maxVUs ({most})"))
    return found


def check_options(executor: str, options: dict[str, Any]) -> None:
    """Raise :class:`K6OptionError` listing every option of ``options`` k6 would refuse."""
    found = option_problems(executor, options)
    if found:
        raise K6OptionError(found)
