"""The scan reader: pages -> one logical Table (the contract the form profile relies on), text layers,
the RapidOCR engine.

Most tests read the shared scans with cached OCR words (tests/data/ocr_cache, see make_ocr_cache.py)
given as the pages' words, so they run in seconds. One test runs real OCR on one page (turned upside
down, so it also checks the orientation decision); whole-document OCR runs are marked slow.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.datamodel import BBox, Cell, PageImage, SourceKind, Table, Word
from pipeline.ocr import EngineUnavailable, get_engine
from pipeline.scan import ScanResult, format_table, read_page, read_pages

DATA = Path(__file__).resolve().parent / "data"
SCANS = Path(os.environ.get("FORMRESCUE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "scans"
needs_scans = pytest.mark.skipif(not (SCANS / "clean-20-000.pdf").exists(), reason="../shared/scans not present")


def render(pdf_path: Path, number: int, dpi: int = 300) -> tuple[np.ndarray, tuple[Word, ...] | None]:
    import pypdfium2 as pdfium

    from pipeline.textlayer import text_layer_words

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        page = pdf[number - 1]
        image = np.asarray(page.render(scale=dpi / 72).to_pil().convert("RGB"))
        return image, text_layer_words(page, dpi / 72)
    finally:
        pdf.close()


def cached_words(doc: str, number: int) -> tuple[Word, ...]:
    data = json.loads((DATA / "ocr_cache" / f"{doc}-p{number}.json").read_text(encoding="utf-8"))
    return tuple(Word(w["text"], BBox.from_list(w["bbox"]), float(w["confidence"])) for w in data["words"])


def cached_pages(doc: str) -> Iterator[PageImage]:
    """The document's pages, rendered one at a time, each with its cached OCR words."""
    for number in range(1, 7):
        image, _ = render(SCANS / f"{doc}.pdf", number)
        yield PageImage(number, image, 300.0, cached_words(doc, number))


@functools.lru_cache(maxsize=2)
def cached_doc(doc: str) -> ScanResult:
    return read_pages(cached_pages(doc), None)


def row_texts(table: Table, row: int) -> list[str]:
    return [c.text for c in table.rows()[row]]


def find(table: Table, text: str) -> Cell:
    return next(c for c in table.cells if c.text == text)


# ------------------------------------------------------------------------------------------- contract


@needs_scans
@pytest.mark.parametrize("doc", ["clean-20-000", "noisy-20-000"])
def test_table_contract(doc: str) -> None:
    result = cached_doc(doc)
    table = result.table
    assert table.kind is SourceKind.TEXT_LAYER  # every page came with words (the cache), none was OCRed
    assert len(table.row_pages) == table.n_rows and list(table.row_pages) == sorted(table.row_pages)
    assert table.col_edges[0] == 0.0 and table.col_edges[-1] == 1.0 and len(table.col_edges) == table.n_cols + 1
    assert [p.number for p in result.pages] == [1, 2, 3, 4, 5, 6]
    occupied: set[tuple[int, int]] = set()
    for cell in table.cells:
        assert cell.col >= 0 and cell.last_col < table.n_cols and cell.last_row < table.n_rows
        assert all(table.row_pages[r] == cell.page for r in range(cell.row, cell.last_row + 1))  # never across pages
        assert cell.bbox is not None and 0 <= cell.bbox.x0 < cell.bbox.x1 <= 2482 and 0 <= cell.bbox.y0 < cell.bbox.y1
        assert cell.text == cell.text.strip() and 0.0 <= cell.confidence <= 1.0
        if not cell.ruled:
            assert (cell.col, cell.col_span, cell.row_span) == (0, table.n_cols, 1) and cell.text
        for r in range(cell.row, cell.last_row + 1):
            for c in range(cell.col, cell.last_col + 1):
                assert (r, c) not in occupied, f"cells overlap at row {r} col {c}"
                occupied.add((r, c))
        if not cell.text:
            assert cell.confidence == 1.0 and cell.words == ()


@needs_scans
def test_one_column_grid_for_every_page_and_section() -> None:
    table = cached_doc("clean-20-000").table
    labels = {"一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "偏差原因分析及改进措施"}
    headers = [[(c.col, c.col_span) for c in row if c.text in labels] for row in table.rows()
               if any(c.text == "三级指标" for c in row)]
    assert len(headers) == 2 and headers[0] == headers[1]  # both forms' indicator headers line up
    name_col = next(c for c in table.cells if c.text == "三级指标").col
    names = [c for c in table.cells if c.col == name_col and c.ruled and c.text and c.page in (2, 3, 6)]
    assert len(names) > 20  # continuation pages put indicator names in the same column
    funds = [c for c in table.cells if c.text in ("10,580,000.00", "700,000.00")]
    assert len({(c.col, c.col_span) for c in funds}) == 1


@needs_scans
def test_rows_in_reading_order_with_free_text_lines() -> None:
    table = cached_doc("clean-20-000").table
    assert row_texts(table, 0) == ["财政项目支出绩效自评表"] and row_texts(table, 1) == ["(2022年度)"]
    assert not table.rows()[0][0].ruled
    notes = [c.text for c in table.cells if c.page == 4]
    assert _normal(notes[0]) == "说明:" and notes[1].startswith("1.本表由项目实施单位填报") and len(notes) == 5
    title_rows = [r for r in range(table.n_rows) if row_texts(table, r) == ["财政项目支出绩效自评表"]]
    assert [table.row_pages[r] for r in title_rows] == [1, 5]


@needs_scans
def test_rows_split_by_a_page_break_are_left_as_printed() -> None:
    table = cached_doc("clean-20-000").table
    head = find(table, "“G60科创云”能满足15000人同时")
    tail = find(table, "上线")
    assert (head.page, tail.page) == (1, 2) and tail.row == head.row + 1 and tail.col == head.col
    # the merged outer column and the level cells continue on page 2 as their own, empty, cells
    continued = [c for c in table.cells if c.row == tail.row and c.col < tail.col]
    assert continued and all(c.text == "" and c.page == 2 for c in continued)
    outer = next(c for c in continued if c.col == 0)
    assert outer.row_span == sum(1 for p in table.row_pages if p == 2)


@needs_scans
def test_page_without_table_is_reported() -> None:
    result = cached_doc("clean-20-000")
    assert [(i.code, "page 4" in i.message) for i in result.issues] == [("page_without_table", True)]
    info = result.pages[3]
    assert (info.n_tables, info.n_rows, info.rotation) == (0, 5, 0)


@needs_scans
def test_seal_page_keeps_its_last_rows() -> None:
    table = cached_doc("noisy-20-000").table
    total = next(r for r in range(table.n_rows) if row_texts(table, r)[:1] == ["总分"] and table.row_pages[r] == 3)
    assert row_texts(table, total) == ["总分", "100", "100", ""]
    assert row_texts(table, total - 1)[-6:] == ["相关方满意度", ">=85%", ">=85%", "10", "10", "无"]


@needs_scans
def test_format_table_dump() -> None:
    text = format_table(cached_doc("clean-20-000").table)
    assert text.splitlines()[1] == "p1 r000 | ~0+15:财政项目支出绩效自评表"
    assert "| 0+2x5:项目资金(元) |" in text


# ------------------------------------------------------------------------------------------- text layer


@needs_scans
def test_text_layer_pdf_reads_exactly_without_ocr() -> None:
    path = SCANS / "clean-20-000.textlayer.pdf"

    def pages() -> Iterator[PageImage]:
        for number in (1, 2):
            image, words = render(path, number)
            assert words is not None
            yield PageImage(number, image, 300.0, words)

    result = read_pages(pages(), None)
    table = result.table
    assert table.kind is SourceKind.TEXT_LAYER and all(p.ocr_seconds == 0.0 for p in result.pages)
    texts = [c.text for c in table.cells]
    for expected in ("财政项目支出绩效自评表", "（2022年度）", "10,580,000.00", "项目资金（元）",
                     "“G60科创云”能满足15000人同时", "上海市松江区科创发展办公室", "—",
                     "集聚全牌照、全产业链、品牌化、专业化金融资源，探索投、债、贷、基联动模式，全方"):
        assert expected in texts
    assert all(c.confidence == 1.0 for c in table.cells)


@needs_scans
def test_text_layer_words_are_in_rendered_pixels_and_absent_on_scans() -> None:
    image, words = render(SCANS / "clean-20-000.textlayer.pdf", 1)
    assert words is not None
    title = next(w for w in words if w.text == "财政项目支出绩效自评表")
    x0, y0, x1, y1 = (round(v) for v in title.bbox.to_list())
    ink = image[y0:y1, x0:x1].min(axis=2) < 128
    assert ink.mean() > 0.1 and image[y0 - 60:y0 - 5, x0:x1].min() > 200  # the title's ink is inside its box
    _, none = render(SCANS / "clean-20-000.pdf", 1)
    assert none is None


# ------------------------------------------------------------------------------------------- engine


def test_engine_without_model_files_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="rapidocr"):
        get_engine("rapidocr", model_dir=tmp_path)


@needs_scans
def test_engine_reads_line_crops() -> None:
    from pipeline import imaging

    image, _ = render(SCANS / "clean-20-000.pdf", 1)
    engine = get_engine("rapidocr")
    words = {w.text: w.bbox for w in cached_words("clean-20-000", 1)}
    crops = [imaging.ocr_crop(imaging.PreparedPage(image, image, imaging.PageTransform.identity(2482, 3508), 300, 300),
                              words[t].expand(8)) for t in ("10,580,000.00", "年初预算数", "=100%")]
    results = engine.recognize_lines(crops)  # type: ignore[attr-defined]
    assert [t for t, _ in results] == ["10,580,000.00", "年初预算数", "=100%"]
    assert all(c > 0.9 for _, c in results)


@needs_scans
def test_engine_reads_what_the_models_own_output_says() -> None:
    """The engine asks the model for each step's best class only (a TopK appended in memory): the text and
    confidences are those of the model's full per-class output decoded with NumPy. Gray line crops (what
    the reader cuts) read exactly as their RGB copies."""
    import cv2
    import onnxruntime as ort

    from pipeline import imaging
    from pipeline.ocr.rapid import REC_HEIGHT, RapidOcrEngine

    image, _ = render(SCANS / "clean-20-000.pdf", 1)
    engine = RapidOcrEngine()
    page = imaging.PreparedPage(image, image, imaging.PageTransform.identity(2482, 3508), 300, 300)
    crops = [imaging.ocr_crop(page, w.bbox.expand(8)) for w in cached_words("clean-20-000", 1)[:30]]
    assert all(c.ndim == 2 for c in crops)
    got = engine.recognize_lines_detailed(crops)
    assert got == engine.recognize_lines_detailed([cv2.cvtColor(c, cv2.COLOR_GRAY2RGB) for c in crops])
    assert sum(bool(text) for text, _, _ in got) >= 25

    plain = ort.InferenceSession(str(engine.rec_path), providers=["CPUExecutionProvider"])
    labels = ["", *plain.get_modelmeta().custom_metadata_map["character"].splitlines(), " "]
    for crop, (text, mean, low) in zip(crops, got, strict=True):
        line = engine.prepare_lines([crop])[0]
        assert line is not None
        tensor = np.zeros((1, 3, REC_HEIGHT, -(-line.width // 8) * 8), np.float32)
        tensor[0, :, :, :line.width] = line.pixels
        probs = plain.run(None, {plain.get_inputs()[0].name: tensor})[0][0]
        best = probs.argmax(axis=1)
        keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
        assert text == "".join(labels[i] for i in best[keep])
        if text:
            conf = probs.max(axis=1)[keep]
            assert mean == pytest.approx(float(conf.mean()), abs=1e-5)
            assert low == pytest.approx(float(conf[[labels[i] != " " for i in best[keep]]].min()), abs=1e-5)


@needs_scans
def test_real_ocr_of_an_upside_down_page() -> None:
    """The one real OCR page of the default run: clean page 1 scanned upside down."""
    image, _ = render(SCANS / "clean-20-000.pdf", 1)
    turned = np.ascontiguousarray(image[::-1, ::-1])
    layout, clock = read_page(PageImage(1, turned, 300.0), get_engine("rapidocr"))
    assert layout.transform.rotation == 180 and layout.source is SourceKind.OCR and clock.ocr > 0
    cells = {c.text: c for t in layout.tables for c in t.cells}
    for text in ("10,580,000.00", "7,862,478.04", "“G60科创云”能满足15000人同时",
                 "按照预定工作职责提供物业管理等相关服务", "年初预算数", "=100%", "—"):
        assert text in cells, text
    # boxes are in the pixels of the page as given: the money cell is in the lower half of the turned page
    money = cells["10,580,000.00"].words[0].bbox
    assert money.cy > turned.shape[0] / 2 and money.cx > turned.shape[1] / 2


# ------------------------------------------------------------------------------------------- reader logic


class ScriptedEngine:
    """A line recogniser that reads every crop as ``first``, and the same crop set in a wider white
    margin (the second opinion) as ``second``."""

    name = "scripted"

    def __init__(self, first: str, second: str, confidence: float = 0.99) -> None:
        self.first, self.second, self.confidence = first, second, confidence
        self.calls: list[int] = []
        self.margins: list[int] = []

    def recognize(self, image: np.ndarray) -> list[Word]:
        raise AssertionError("the reader reads line crops, not whole pages")

    def recognize_lines(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        self.calls.append(len(crops))
        out = []
        for crop in crops:
            columns = crop.reshape(crop.shape[0], crop.shape[1], -1).min(axis=(0, 2))  # gray or RGB crops
            margin = int(np.argmax(columns < 128))  # white columns before the first ink
            self.margins.append(margin)
            out.append((self.second if margin > self.margins[0] + 8 else self.first, self.confidence))
        return out


def _one_cell_page() -> np.ndarray:
    page = np.full((1200, 1000, 3), 250, np.uint8)
    for y in (300, 420):
        page[y:y + 4, 200:800] = 30
    for x in (200, 500, 796):
        page[300:424, x:x + 4] = 30
    page[340:380, 560:590] = 30  # a "character" in the right cell
    page[345:375, 600:612] = 30
    page[340:380, 630:660] = 30
    return page


@pytest.mark.parametrize("second,doubted", [("4.0家", False), ("40家", True)])
def test_sure_digit_reading_gets_a_second_opinion(second: str, doubted: bool, monkeypatch: pytest.MonkeyPatch,
                                                  ) -> None:
    from pipeline import scan

    monkeypatch.setattr(scan, "SECOND_OPINION", True)
    engine = ScriptedEngine("4.0家", second)
    layout_, _ = read_page(PageImage(1, _one_cell_page(), 300.0), engine, rotation=0)
    (cell,) = [c for t in layout_.tables for c in t.cells if c.text]
    assert cell.text == "4.0家" and engine.calls == [1, 1]  # the line (orientation sample), its second opinion
    assert (cell.confidence < 0.9) is doubted


def test_upside_down_test_is_not_fooled_by_one_confident_character() -> None:
    from pipeline.scan import _reads_better

    upright = [("", 0.0), ("三辦指牌", 0.08), ("控制在预算范围内", 1.0), ("设备采购单价", 1.0)]
    assert not _reads_better([("", 0.0), ("即", 0.99), ("", 0.0), ("", 0.0)], upright)
    garbage = [("ʎ", 0.3), ("6l", 0.2), ("", 0.0), ("ᄅ", 0.4)]
    assert _reads_better([("控制在预算范围内", 0.99), ("设备采购单价", 0.98), ("二级指标", 0.97), ("", 0.0)], garbage)


# ------------------------------------------------------------------------------------------- slow


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace(",", "").replace(" ", "")


@pytest.mark.slow
@needs_scans
@pytest.mark.parametrize("doc,allowed_misses", [("clean-20-000", 0), ("noisy-20-000", 6)])
def test_full_ocr_finds_the_truth_values(doc: str, allowed_misses: int) -> None:
    """Every indicator value and name of the truth appears as a cell (split names as their two parts)."""
    truth = json.loads((SCANS / f"{doc}.truth.json").read_text(encoding="utf-8"))

    def pages() -> Iterator[PageImage]:
        for number in range(1, 7):
            image, _ = render(SCANS / f"{doc}.pdf", number)
            yield PageImage(number, image, 300.0)

    table = read_pages(pages(), get_engine("rapidocr")).table
    got = [_normal(c.text) for c in table.cells]
    joined = {a + b for a, b in itertools.pairwise(got)} | {
        _normal(a.text) + _normal(b.text) for a in table.cells for b in table.cells
        if a.col == b.col and b.page == a.page + 1 and b.row > a.row}
    misses = []
    for form in truth["forms"]:
        for ind in form["indicators"]:
            for key in ("name", "target", "actual", "weight", "score", "deviation"):
                value = _normal(str(ind[key]))
                if value not in got and value not in joined:
                    misses.append(value)
    assert len(misses) <= allowed_misses, misses
