"""Level inference on small fixtures: decisions right, doubtful rows below the review threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.forms import LEVEL_ACCEPT
from pipeline.levels import infer_levels

FIXTURES = sorted((Path(__file__).parent / "data" / "levels").glob("*.json"))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_levels_fixture(fixture: Path) -> None:
    case = json.loads(fixture.read_text(encoding="utf-8"))
    content = [case["content"].get(str(i), {}) for i in range(len(case["observed"]))]
    pages = [frozenset(p) for p in case["pages"]]
    decisions = infer_levels(case["observed"], content, pages)
    for i, (decision, truth) in enumerate(zip(decisions, case["truth"], strict=True)):
        allowed = truth if isinstance(truth, list) else [truth]
        assert decision.label in allowed, f"row {i}: {decision.label} not in {allowed}"
        if i in case["must_review"]:
            assert decision.probability < LEVEL_ACCEPT, f"row {i} should be sent to review"
        elif not isinstance(truth, list) and case["observed"][i] is not None:
            # A row that is not doubtful in the truth may still be reviewed, but printed ones never are.
            assert decision.probability == 1.0


def test_scan_continuation_cell_keeps_label_above_when_next_label_is_the_same() -> None:
    decisions = infer_levels(["产出指标", None, None, "产出指标"])
    assert [d.label for d in decisions] == ["产出指标"] * 4
    assert all(d.probability == 1.0 for d in decisions)


def test_no_labels_at_all_gives_no_label() -> None:
    assert all(d.label is None for d in infer_levels([None, None]))
