"""Issue 3's acceptance on ../shared/scans (made by an office renderer, not our generator), scored by
../shared/tools/evaluate.py: the text-layer PDF without OCR, the clean and noisy scans with real OCR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.datamodel import DocumentResult
from pipeline.export import export
from pipeline.process import process_file
from tests.conftest import SCANS, evaluate, require_shared

# stem, file, minimum accuracy, maximum silent-error rate
CASES = [
    ("clean-20-000", "clean-20-000.textlayer.pdf", 1.0, 0.0),
    ("clean-20-000", "clean-20-000.pdf", 0.99, 0.002),
    ("noisy-20-000", "noisy-20-000.pdf", 0.98, 0.005),
]
SPLIT_ROWS = ("“G60科创云”能满足15000人同时上线",
              "集聚全牌照、全产业链、品牌化、专业化金融资源，探索投、债、贷、基联动模式，全方位、全周期支持创新创业，"
              "培育和壮大九城市“双创”主体。")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, DocumentResult]]:
    require_shared()
    done: dict[str, tuple[Path, DocumentResult]] = {}
    for _, name, _, _ in CASES:
        out = tmp_path_factory.mktemp(name.replace(".", "-"))
        result = process_file(SCANS / name, str(SCANS / name), Settings(), out=out)
        export(out, [result])
        done[name] = (out, result)
    return done


@pytest.mark.parametrize(("stem", "name", "min_accuracy", "max_silent"), CASES, ids=[c[1] for c in CASES])
def test_scan_meets_the_bars(outputs: dict[str, tuple[Path, DocumentResult]], stem: str, name: str,
                             min_accuracy: float, max_silent: float) -> None:
    out, _ = outputs[name]
    code, figures = evaluate(out, SCANS / f"{stem}.truth.json", min_accuracy=min_accuracy, max_silent=max_silent)
    assert code == 0, figures
    assert figures["row_recall"] == 1.0, figures


@pytest.mark.parametrize("name", [c[1] for c in CASES])
def test_split_rows_whole_and_notes_page_skipped(outputs: dict[str, tuple[Path, DocumentResult]], name: str) -> None:
    out, result = outputs[name]
    records = [json.loads(line) for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["project_name"] for r in records] == ["G60科创走廊建设", "宣传与推广"]
    assert [r["pages"] for r in records] == [[1, 2, 3], [5, 6]]
    names = {i["name"] for i in records[0]["indicators"]}
    for whole in SPLIT_ROWS:
        assert whole in names, f"split row not joined: {whole}"
    skipped = [i for i in result.issues if i.code == "non_form_content"]
    assert skipped and "page 4" in skipped[0].message
