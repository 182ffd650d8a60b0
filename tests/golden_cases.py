"""The golden end-to-end cases: inputs under samples/ (a text dump, a generated clean scan read with the
default OCR engine) and what of their records is compared. Regenerate with ``python -m scripts.regen_golden``
after a deliberate change, and review the diff like code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.export import form_record, form_status
from pipeline.process import process_file

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = {
    "seed-text-dump": REPO / "samples" / "text" / "000_9ccbaafc82c3a09f.txt",
    "clean-scan": REPO / "samples" / "scans" / "clean-122-000.pdf",
}
# Confidence and pixel boxes may differ in the last digits between CPUs (ONNX Runtime kernels); the values
# a user reads, and the decisions made from them, must not.
VOLATILE = {"confidence", "catalogue_score", "provenance", "bbox", "source", "doc_id", "issues"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def records_of(path: Path) -> list[dict[str, Any]]:
    result = process_file(path, path.name, Settings())
    records = [_strip(form_record(result, form, form_status(form))) for form in result.forms]
    for record, form in zip(records, result.forms, strict=True):
        record["flagged_fields"] = sorted({flag.field for flag in form.flags if flag.reason != "low_ocr_confidence"})
    return records


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.json"


def write_golden(name: str) -> Path:
    path = golden_path(name)
    path.write_text(json.dumps(records_of(CASES[name]), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path
