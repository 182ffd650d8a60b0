"""Issue 3's figures with the optional PaddleOCR engine on the shared scans (CI installs the extra and runs
``pytest -m paddleocr``). Full-page PaddleOCR costs ~15-30 s a page here, so this is not in the default run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.export import export
from pipeline.process import process_file
from tests.conftest import SCANS, evaluate, require_shared

pytestmark = pytest.mark.paddleocr

BARS = {"clean-20-000": (0.99, 0.002), "noisy-20-000": (0.98, 0.005)}


@pytest.mark.parametrize("stem", sorted(BARS))
def test_shared_scan_with_paddleocr(stem: str, tmp_path: Path) -> None:
    pytest.importorskip("paddleocr", reason="the paddleocr extra is not installed (scripts/install_paddleocr_extra.sh)")
    require_shared()
    source = SCANS / f"{stem}.pdf"
    result = process_file(source, str(source), Settings(engine="paddleocr"))
    assert result.error is None, result.error
    export(tmp_path, [result])
    min_accuracy, max_silent = BARS[stem]
    code, figures = evaluate(tmp_path, SCANS / f"{stem}.truth.json", min_accuracy=min_accuracy, max_silent=max_silent)
    assert code == 0, figures
    assert figures["row_recall"] == 1.0, figures
