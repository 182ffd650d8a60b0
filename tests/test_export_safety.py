"""CSV exports open safely in Excel/WPS and our readers give back exactly what was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.export import excel_safe, excel_unsafe, read_csv, write_csv

DANGEROUS = ["=100%", "+1", "-5", "@SUM(A1)", "\tx", "\rx", "'quoted", "=cmd|' /C calc'!A0", "plain 文本", ""]


@pytest.mark.parametrize("value", DANGEROUS)
def test_escape_round_trip(value: str) -> None:
    safe = excel_safe(value)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert excel_unsafe(safe) == value


def test_csv_has_bom_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    write_csv(path, ["a", "b"], [{"a": v, "b": "中文"} for v in DANGEROUS])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert [row["a"] for row in read_csv(path)] == DANGEROUS
    assert not list(tmp_path.glob(".x.csv.*")), "temporary files left behind"
