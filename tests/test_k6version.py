"""Parsing k6's version output (JSON and text, old and new) and the minimum-version rule."""

from __future__ import annotations

import pytest

from orchestrator.execution.k6version import (
    MIN_K6_VERSION,
    format_version,
    is_supported,
    parse_k6_version,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"commit":"0e3fb953be","go_arch":"amd64","go_os":"linux",'
            '"go_version":"go1.24.4","version":"v1.1.0"}\n',
            (1, 1, 0),
        ),
        ("k6 v1.1.0 (commit/0e3fb953be, go1.24.4, linux/amd64)\n", (1, 1, 0)),
        (
            "k6 v0.46.0 (2023-08-14T13:23:26+0000/v0.46.0-0-gcbd9e9ad, go1.20.7, linux/amd64)",
            (0, 46, 0),
        ),
        ("k6 v0.57.0 (commit/50afd82c18, go1.23.6, linux/amd64)", (0, 57, 0)),
        ("k6 v2.0.0-rc1 (commit/deadbeef, go1.25.0, linux/amd64)", (2, 0, 0)),
        # a JSON line from a future k6 with extras
        ('{"version":"v2.2.1","extensions":[]}', (2, 2, 1)),
        # warnings before the version line
        ("WARN some deprecation\nk6 v1.0.0 (commit/abc, go1.24.1, linux/amd64)", (1, 0, 0)),
    ],
)
def test_parse(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_k6_version(text) == expected


@pytest.mark.parametrize("text", ["", "k6: command not found", '{"version": 3}', "{not json"])
def test_unparseable_text_raises(text: str) -> None:
    with pytest.raises(ValueError):
        parse_k6_version(text)


def test_minimum_rule() -> None:
    assert MIN_K6_VERSION == (0, 47, 0)
    assert not is_supported((0, 46, 0))
    assert is_supported((0, 47, 0))
    assert is_supported((1, 1, 0))
    assert format_version((0, 47, 0)) == "v0.47.0"
