"""The comparison's decision, figure by figure (fast: no k6, no Docker)."""

from __future__ import annotations

from orchestrator.regression.compare import OVERALL, Side, compare_sides


def test_a_row_on_neither_side_is_not_noted_as_only_in_b() -> None:
    # two runs without HTTP requests: no "all" figures on either side
    a = Side("a", "run", "s", "local", "smoke", {}, {}, "raw points")
    b = Side("b", "run", "s", "local", "smoke", {}, {}, "raw points")
    cmp = compare_sides(a, b)
    assert [r.name for r in cmp.rows] == [OVERALL]
    assert cmp.notes == []
