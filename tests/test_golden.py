"""Golden end-to-end tests on samples/: the records a user gets must not change without a deliberate
regeneration (python scripts/regen_golden.py)."""

from __future__ import annotations

import json

import pytest

from tests.golden_cases import CASES, golden_path, records_of


@pytest.mark.parametrize("name", sorted(CASES))
def test_records_match_golden(name: str) -> None:
    expected = json.loads(golden_path(name).read_text(encoding="utf-8"))
    got = records_of(CASES[name])
    assert len(got) == len(expected)
    for form_got, form_expected in zip(got, expected, strict=True):
        for key in form_expected:
            assert form_got.get(key) == form_expected[key], f"{name}: {key} differs from the golden file"
