"""Issue 3's figures with the optional PaddleOCR engine on the shared scans (CI installs the extra and runs
``pytest -m paddleocr``). The ``paddleocr`` engine reads the text lines the scan reader finds in the cells with
PaddleOCR's recogniser (~15 s CPU a page here, twice RapidOCR's), so this is not in the default run.
The figures are kept as the test's ``figures`` property (``--junitxml`` shows them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.export import export
from pipeline.process import process_file
from tests.conftest import SCANS, evaluate, require_shared

pytestmark = pytest.mark.paddleocr

BARS = {"clean-20-000": (0.99, 0.002), "noisy-20-000": (0.98, 0.005)}


@pytest.mark.parametrize("stem", sorted(BARS))
def test_shared_scan_with_paddleocr(stem: str, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    pytest.importorskip("paddleocr", reason="the paddleocr extra is not installed (scripts/install_paddleocr_extra.sh)")
    require_shared()
    source = SCANS / f"{stem}.pdf"
    result = process_file(source, str(source), Settings(engine="paddleocr"))
    assert result.error is None, result.error
    export(tmp_path, [result])
    min_accuracy, max_silent = BARS[stem]
    code, figures = evaluate(tmp_path, SCANS / f"{stem}.truth.json", min_accuracy=min_accuracy, max_silent=max_silent)
    record_property("figures", figures)
    assert code == 0, figures
    assert figures["row_recall"] == 1.0, figures
