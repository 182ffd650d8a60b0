"""Layout and page preparation: ruling lines -> grids with spans, text lines, words to cells.

Per-step tests run on small JSON fixtures (tests/data/layout: rulings in, cells out, img2table style) and
on synthetic images; a few run on real pages of ../shared/scans (no OCR: the words come from the cache
in tests/data/ocr_cache, made by tests/data/make_ocr_cache.py).
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import imaging, layout
from pipeline.datamodel import BBox, PageImage, Word
from pipeline.layout import LayoutParams, Rulings, Segment

DATA = Path(__file__).resolve().parent / "data"
SCANS = Path(os.environ.get("FORMRESCUE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "scans"
needs_scans = pytest.mark.skipif(not (SCANS / "clean-20-000.pdf").exists(), reason="../shared/scans not present")


@functools.lru_cache(maxsize=3)
def page_image(doc: str, number: int) -> np.ndarray:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(SCANS / f"{doc}.pdf"))
    try:
        return np.asarray(pdf[number - 1].render(scale=300 / 72).to_pil().convert("RGB"))
    finally:
        pdf.close()


def cached_words(doc: str, number: int) -> tuple[Word, ...]:
    data = json.loads((DATA / "ocr_cache" / f"{doc}-p{number}.json").read_text(encoding="utf-8"))
    return tuple(Word(w["text"], BBox.from_list(w["bbox"]), float(w["confidence"])) for w in data["words"])


def grid_of(image: np.ndarray, **kwargs: object) -> tuple[imaging.PreparedPage, list[layout.PageTable]]:
    page = imaging.prepare_page(image, 300.0, **kwargs)  # type: ignore[arg-type]
    params = LayoutParams(dpi=page.work_dpi)
    rulings, _ = layout.detect_rulings(page.ink, params)
    return page, layout.find_tables(rulings, params)


def structure(tables: list[layout.PageTable]) -> list[list[tuple[int, int, int, int]]]:
    return [sorted((c.row, c.col, c.row_span, c.col_span) for c in t.cells) for t in tables]


# ------------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("path", sorted((DATA / "layout").glob("*.json")), ids=lambda p: p.stem)
def test_rulings_fixture_give_expected_cells(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    params = LayoutParams(dpi=float(data["dpi"]))
    tables = layout.find_tables(Rulings.from_dict(data["rulings"]), params)
    got = [{"n_rows": t.n_rows, "n_cols": t.n_cols, "cells": [list(c) for c in s]}
           for t, s in zip(tables, structure(tables), strict=True)]
    expected = [{**e, "cells": sorted(e["cells"])} for e in data["expected"]]
    assert got == expected, data.get("note", "")


@pytest.mark.parametrize("path", sorted((DATA / "layout").glob("*.ink.png")), ids=lambda p: p.name.split(".")[0])
def test_ink_fixture_gives_expected_cells(path: Path) -> None:
    """Real pages' ink masks (dense text against the rules, bold binarised print, a blurred double rule):
    rulings found in the pixels, text strokes told from rules, the expected grid."""
    from PIL import Image

    data = json.loads(path.with_name(path.name.replace(".ink.png", ".json")).read_text(encoding="utf-8"))
    ink = np.where(np.asarray(Image.open(path).convert("L")) > 127, 255, 0).astype(np.uint8)
    params = LayoutParams(dpi=float(data["dpi"]))
    rulings, _ = layout.detect_rulings(ink, params)
    tables = layout.find_tables(rulings, params)
    assert structure(tables) == [sorted(tuple(c) for c in e["cells"]) for e in data["expected"]], data.get("note", "")


def test_every_grid_position_is_covered_once() -> None:
    data = json.loads((DATA / "layout" / "grid_merged.json").read_text(encoding="utf-8"))
    (table,) = layout.find_tables(Rulings.from_dict(data["rulings"]), LayoutParams(dpi=150))
    covered = [(r, c) for cell in table.cells for r in range(cell.row, cell.last_row + 1)
               for c in range(cell.col, cell.last_col + 1)]
    assert sorted(covered) == [(r, c) for r in range(table.n_rows) for c in range(table.n_cols)]


def test_merged_cell_box_spans_its_rows() -> None:
    data = json.loads((DATA / "layout" / "grid_merged.json").read_text(encoding="utf-8"))
    (table,) = layout.find_tables(Rulings.from_dict(data["rulings"]), LayoutParams(dpi=150))
    label = next(c for c in table.cells if (c.row, c.col) == (0, 0))
    assert (label.row_span, label.col_span) == (2, 1)
    assert label.bbox.y0 == pytest.approx(100, abs=1) and label.bbox.y1 == pytest.approx(220, abs=1)


# ------------------------------------------------------------------------------------------- segments


def test_merge_collinear_joins_a_broken_line_but_not_parallel_ones() -> None:
    pieces = [Segment(100, 50, 300, 50, True), Segment(315, 50.5, 600, 51, True), Segment(100, 80, 600, 80, True)]
    merged = layout.merge_collinear(pieces, LayoutParams(dpi=150))
    assert sorted((round(s.start), round(s.end), round(s.pos)) for s in merged) == [(100, 600, 50), (100, 600, 80)]


def test_detect_rulings_on_a_drawn_grid_with_a_gap_and_text() -> None:
    ink = np.zeros((400, 700), np.uint8)
    for y in (50, 150, 250, 350):
        cv2.line(ink, (50, y), (650, y), 255, 2)
    for x in (50, 350, 650):
        cv2.line(ink, (x, 50), (x, 350), 255, 2)
    ink[150:152, 200:206] = 0  # a pin hole in a rule
    cv2.rectangle(ink, (80, 80), (100, 100), 255, -1)  # a "character"
    params = LayoutParams(dpi=150)
    rulings, mask = layout.detect_rulings(ink, params)
    (table,) = layout.find_tables(rulings, params)
    assert (table.n_rows, table.n_cols, len(table.cells)) == (3, 2, 6)
    assert mask[90, 90] == 0  # the character is not a line


def test_trace_extends_a_stepped_line_to_the_border() -> None:
    ink = np.zeros((200, 600), np.uint8)
    ink[100:102, 20:60] = 255  # a short stretch one pixel higher than the rest (a thin sloped line)
    ink[101:103, 60:580] = 255
    ink[20:180, 20:22] = 255
    ink[20:180, 578:580] = 255
    params = LayoutParams(dpi=150)
    rulings, _ = layout.detect_rulings(ink, params)
    line = max(rulings.horizontal, key=lambda s: s.length)
    assert line.start <= 22


def test_double_rule_blurred_into_one_thick_line_is_still_a_rule() -> None:
    """Two tables printed back to back: their double rule blurs into one band thicker than a rule."""
    ink = np.zeros((300, 700), np.uint8)
    for y in (50, 100, 200, 250):
        ink[y:y + 3, 50:651] = 255
    ink[146:157, 50:651] = 255  # 11 px: two 4 px rules and the gap between them, closed by blur
    for x in (50, 649):
        ink[50:253, x:x + 3] = 255
    ink[50:152, 300:303] = 255  # a column border of the upper table only
    ink[150:253, 400:403] = 255  # ... and one of the lower table only, 100 px to its right
    params = LayoutParams(dpi=150)
    rulings, _ = layout.detect_rulings(ink, params)
    (table,) = layout.find_tables(rulings, params)
    assert table.n_rows == 4
    assert structure([table]) == [[(0, 0, 1, 1), (0, 1, 1, 2), (1, 0, 1, 1), (1, 1, 1, 2),
                                   (2, 0, 1, 2), (2, 2, 1, 1), (3, 0, 1, 2), (3, 2, 1, 1)]]


def test_close_column_borders_of_stacked_blocks_stay_apart() -> None:
    """Column borders 10 px apart, one ruling the upper rows and one the lower, are two borders."""
    segs = [Segment(50, y, 650, y, True) for y in (50, 100, 150, 200)]
    segs += [Segment(x, 50, x, 200, False) for x in (50, 650)]
    segs += [Segment(300, 50, 300, 100, False), Segment(310, 100, 310, 200, False)]
    rulings = Rulings(tuple(s for s in segs if s.horizontal), tuple(s for s in segs if not s.horizontal))
    (table,) = layout.find_tables(rulings, LayoutParams(dpi=150))
    assert (table.n_rows, table.n_cols) == (3, 3)
    assert structure([table]) == [[(0, 0, 1, 1), (0, 1, 1, 2), (1, 0, 1, 2), (1, 2, 1, 1),
                                   (2, 0, 1, 2), (2, 2, 1, 1)]]


def test_text_stroke_in_line_with_a_rule_does_not_split_the_merged_cell_below() -> None:
    ink = np.zeros((220, 700), np.uint8)
    for y in (50, 100, 170):
        ink[y:y + 3, 50:651] = 255
    for x in (50, 649):
        ink[50:173, x:x + 3] = 255
    ink[50:102, 350:353] = 255  # the border of the upper row's two cells
    ink[102:140, 350:353] = 255  # a character's vertical stroke right under it (the merged row's text)
    for y in (104, 112, 120, 128):  # ... crossed by the character's other strokes ("丰")
        ink[y:y + 3, 335:368] = 255
    params = LayoutParams(dpi=150)
    rulings, _ = layout.detect_rulings(ink, params)
    (table,) = layout.find_tables(rulings, params)
    assert structure([table]) == [[(0, 0, 1, 1), (0, 1, 1, 1), (1, 0, 1, 2)]]


def test_short_column_border_that_overruns_its_row_is_kept() -> None:
    """A short border (one row of the funds block) drawn past the rule it ends on (blur, ink bleed)."""
    segs = [Segment(50, y, 650, y, True) for y in (50, 100, 150, 200)]
    segs += [Segment(x, 50, x, 200, False) for x in (50, 650)]
    segs += [Segment(300, 99, 300, 158, False)]  # row 1 only, 8 px past its bottom rule
    rulings = Rulings(tuple(s for s in segs if s.horizontal), tuple(s for s in segs if not s.horizontal))
    (table,) = layout.find_tables(rulings, LayoutParams(dpi=150))
    assert (1, 0, 1, 1) in structure([table])[0]


# ------------------------------------------------------------------------------------------- text lines


def _blocks(mask: np.ndarray, x: int, y: int, n: int, size: int = 22, gap: int = 3) -> None:
    for k in range(n):
        x0 = x + k * (size + gap)
        mask[y:y + size, x0:x0 + size] = 255


def test_cell_text_lines_finds_each_line_and_ignores_specks() -> None:
    params = LayoutParams(dpi=150)
    mask = np.zeros((200, 400), np.uint8)
    _blocks(mask, 30, 30, 8)
    _blocks(mask, 30, 65, 3)
    mask[150:153, 300:303] = 255  # dust far from any text
    mask = layout.remove_specks(mask, params)
    lines = layout.cell_text_lines(mask, BBox(10, 10, 390, 190), params)
    assert [(round(b.y0), round(b.x0), round(b.x1)) for b in lines] == [(30, 30, 227), (65, 30, 102)]


def test_touching_lines_of_small_text_are_split() -> None:
    """Two lines of 8 pt text set tight, joined by a trace of ink: two lines, found with the page's size."""
    mask = np.zeros((80, 300), np.uint8)
    _blocks(mask, 20, 20, 8, size=14, gap=2)
    _blocks(mask, 20, 36, 5, size=14, gap=2)
    mask[34:36, 60:62] = 255  # the two lines touch where blur joined two strokes
    cell = BBox(10, 10, 290, 70)
    table = layout.PageTable((), (), (layout.GridCell(0, 0, 1, 1, cell),))
    size = layout.text_size(np.tile(mask, (10, 1)), [layout.PageTable((), (), tuple(
        layout.GridCell(k, 0, 1, 1, BBox(10, 10 + 80 * k, 290, 70 + 80 * k)) for k in range(10)))],
        LayoutParams(dpi=150))
    assert size is not None and 13 <= size * 150 <= 16
    params = LayoutParams(dpi=150, em=size)
    lines = layout.cell_text_lines(mask, table.cells[0].bbox, params)
    assert [(round(b.y0), round(b.y1)) for b in lines] == [(20, 34), (36, 50)]


def test_remove_specks_keeps_punctuation_beside_text() -> None:
    params = LayoutParams(dpi=150)
    mask = np.zeros((100, 300), np.uint8)
    _blocks(mask, 20, 30, 2)
    mask[48:52, 72:76] = 255  # a full stop at the foot of the line
    mask[5:9, 200:204] = 255  # a speck off the line
    mask[40, 120] = 255  # one pixel of salt noise near the text
    out = layout.remove_specks(mask, params)
    assert out[50, 74] == 255 and out[7, 202] == 0 and out[40, 120] == 0


def test_is_dash_tells_a_dash_from_an_equals_sign() -> None:
    params = LayoutParams(dpi=150)
    mask = np.zeros((40, 60), np.uint8)
    mask[20:22, 10:32] = 255
    assert layout.is_dash(BBox(10, 20, 32, 22), params, mask)
    mask[25:27, 10:32] = 255  # a second bar under it
    assert not layout.is_dash(BBox(10, 20, 32, 27), params, mask)
    assert not layout.is_dash(BBox(10, 10, 32, 30), params)  # too tall to be a dash


# ------------------------------------------------------------------------------------------- words


def test_split_word_at_a_cell_border() -> None:
    word = Word("上海市松江区实施单位", BBox(0, 0, 100, 10), 0.9)
    left, right = layout.split_word(word, [60])
    assert (left.text, right.text) == ("上海市松江区", "实施单位")
    assert left.bbox.x1 == pytest.approx(60) and right.confidence == 0.9


def test_assign_words_to_cells_and_free_text() -> None:
    data = json.loads((DATA / "layout" / "grid_simple.json").read_text(encoding="utf-8"))
    tables = layout.find_tables(Rulings.from_dict(data["rulings"]), LayoutParams(dpi=150))
    words = [Word("标题", BBox(300, 40, 400, 60)), Word("甲", BBox(150, 120, 170, 140)),
             Word("乙丙", BBox(280, 180, 320, 200))]  # the last one straddles the border at x=300
    result = layout.assign_words(words, tables)
    texts = {tables[0].cells[ci].row * 3 + tables[0].cells[ci].col: [w.text for w in ws]
             for (_, ci), ws in result.cells.items()}
    assert texts == {0: ["甲"], 3: ["乙"], 4: ["丙"]}
    assert [w.text for w in result.free] == ["标题"]


def test_join_text_reads_lines_in_order_without_wrap_spaces() -> None:
    lines = layout.group_lines([Word("满足15000 人同时", BBox(0, 40, 100, 60)),
                                Word("“G60 科创云”能", BBox(0, 10, 100, 30))])
    assert layout.join_text(lines) == "“G60科创云”能满足15000人同时"
    assert layout.join_text([[Word("100", BBox(0, 0, 30, 10))], [Word("%", BBox(0, 12, 10, 22))]]) == "100%"
    assert layout.join_text([[Word("Shanghai", BBox(0, 0, 30, 10))], [Word("Office", BBox(0, 12, 30, 22))]]) == \
        "Shanghai Office"


def test_free_lines_from_words_keeps_far_apart_pieces_apart() -> None:
    words = [Word("财政项目", BBox(100, 10, 200, 30)), Word("支出", BBox(205, 10, 250, 30)),
             Word("第1页", BBox(900, 12, 950, 30))]
    lines = layout.free_lines_from_words(words, LayoutParams(dpi=150))
    assert [w.text for w in lines] == ["财政项目支出", "第1页"]


# ------------------------------------------------------------------------------------------- columns


def test_unify_columns_clusters_lines_of_different_tables() -> None:
    edges, maps = layout.unify_columns([(0.0, 0.3, 0.6, 1.0), (0.0, 0.302, 0.5, 1.0), (0.0, 0.15, 0.3, 1.0)])
    assert [round(e, 3) for e in edges] == [0.0, 0.15, 0.301, 0.5, 0.6, 1.0]
    assert maps == [[0, 2, 4, 5], [0, 2, 3, 5], [0, 1, 2, 5]]


def test_unify_columns_joins_the_nearest_of_two_close_lines() -> None:
    """Page 1 has its funds block's border at 0.764 and its indicator block's at 0.768; page 2 (only
    indicators) has 0.7675: it is the indicator border, whatever order the values sort in."""
    edges, maps = layout.unify_columns([(0.0, 0.695, 0.764, 0.768, 0.829, 1.0), (0.0, 0.695, 0.7675, 0.829, 1.0)])
    assert len(edges) == 6 and maps == [[0, 1, 2, 3, 4, 5], [0, 1, 3, 4, 5]]


def test_unify_columns_never_merges_two_lines_of_one_table() -> None:
    edges, maps = layout.unify_columns([(0.0, 0.300, 0.305, 1.0)])
    assert len(edges) == 4 and maps == [[0, 1, 2, 3]]


# ------------------------------------------------------------------------------------------- imaging


def test_to_rgb_accepts_gray_bool_rgba_and_float() -> None:
    gray = np.full((4, 5), 200, np.uint8)
    assert imaging.to_rgb(gray).shape == (4, 5, 3)
    assert imaging.to_rgb(np.zeros((4, 5), bool))[0, 0].tolist() == [255, 255, 255]
    assert imaging.to_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert imaging.to_rgb(np.ones((4, 5, 3), np.float32))[0, 0].tolist() == [255, 255, 255]


def test_seal_ink_reads_as_paper_and_black_text_under_it_stays() -> None:
    page = np.full((200, 200, 3), (240, 238, 232), np.uint8)
    cv2.putText(page, "8", (60, 140), cv2.FONT_HERSHEY_SIMPLEX, 3, (30, 30, 30), 8)
    seal = page.copy()
    cv2.circle(seal, (100, 100), 70, (215, 80, 80), 12)  # red ring, partly over the "8"
    cv2.circle(seal, (100, 100), 30, (205, 70, 70), -1)
    seal = np.minimum(page, seal)  # stamp ink multiplies: text under it stays dark
    ink = imaging.binarize(imaging.flatten_background(imaging.seal_free_gray(seal), 300))
    text = imaging.binarize(imaging.flatten_background(imaging.seal_free_gray(page), 300))
    assert (ink > 0).sum() == pytest.approx((text > 0).sum(), rel=0.05)


def _page_with_lines(angle: float) -> np.ndarray:
    img = np.full((1200, 900), 255, np.uint8)
    for y in range(150, 1100, 90):
        cv2.line(img, (100, y), (800, y), 0, 3)
    for x in (100, 400, 800):
        cv2.line(img, (x, 150), (x, 1050), 0, 3)
    m = cv2.getRotationMatrix2D((450, 600), angle, 1.0)
    return cv2.warpAffine(img, m, (900, 1200), borderValue=255)


@pytest.mark.parametrize("tilt", [-5.0, -1.3, 0.0, 2.2, 5.0])
def test_estimate_skew_undoes_a_tilt(tilt: float) -> None:
    ink = imaging.binarize(_page_with_lines(tilt))
    assert imaging.estimate_skew(ink, 150) == pytest.approx(-tilt, abs=0.1)


def test_page_transform_maps_boxes_both_ways() -> None:
    for rotation in (0, 90, 180, 270):
        t = imaging.PageTransform.build(2000, 3000, rotation, 1.5, 0.5)
        points = np.array([[10.0, 20.0], [1999.0, 2999.0], [1000.0, 5.0]])
        assert np.allclose(t.to_original(t.to_prepared(points)), points)
    t = imaging.PageTransform.build(2000, 3000, 90, 0.0, 1.0)
    assert t.prepared_size == (3000, 2000)
    assert t.to_prepared(np.array([[0.0, 0.0]])).tolist() == [[3000.0, 0.0]]  # top-left goes top-right


def test_crop_cuts_upright_text_from_a_turned_page() -> None:
    img = np.full((300, 400, 3), 255, np.uint8)
    img[100:120, 50:150] = 0
    turned = np.ascontiguousarray(np.rot90(img, 1))  # 90 degrees counter-clockwise
    page = imaging.prepare_page(turned, 300.0, rotation=90, deskew=False, work_dpi=300.0)
    piece = imaging.crop(page.source, page.transform, BBox(40, 90, 160, 130))
    assert piece.shape[:2] == (40, 120)
    assert piece[15, 60].tolist() == [0, 0, 0] and piece[2, 60].tolist() == [255, 255, 255]


def test_faint_text_gets_its_own_mask_and_full_contrast_crops() -> None:
    """Faded toner: rules print dark, text at ~200 on 245 paper, under the fixed ink threshold."""
    rng = np.random.default_rng(3)
    page = np.clip(245 + rng.normal(0, 3, (1200, 900)), 0, 255).astype(np.uint8)
    page[200:204, 100:800] = 60
    page[400:404, 100:800] = 60
    page[200:404, 100:104] = 60
    page[200:404, 796:800] = 60
    for k in range(10):  # a line of "characters" with thin gray strokes
        x = 150 + 40 * k
        page[280:310, x:x + 3] = 200
        page[280:283, x:x + 28] = 200
        page[307:310, x:x + 28] = 200
    prepared = imaging.prepare_page(page, 300.0, rotation=0, deskew=False)
    assert prepared.text_ink is not None
    assert prepared.ink[140:155, 75:290].sum() == 0 and prepared.text_ink[140:155, 75:290].sum() > 0
    piece = imaging.ocr_crop(prepared, BBox(70, 135, 300, 160))
    assert piece.min() < 100 and np.median(piece) == 255  # strokes dark, paper white


def test_dithered_page_is_found_speckled_and_its_noise_kept_out_of_the_ink() -> None:
    """A binarised page dithered into lone black pixels: the min-filter shrink would make them a field
    of ink; the page is median-filtered first, and the rules and strokes stay."""
    rng = np.random.default_rng(5)
    page = np.full((1200, 900), 255, np.uint8)
    ys, xs = rng.integers(0, 1200, 12000), rng.integers(0, 900, 12000)
    page[300:304, 100:800] = 0
    page[600:604, 100:800] = 0
    page[400:440, 200:206] = 0  # a stroke
    assert not imaging.is_speckled(page)
    page[ys, xs] = 0  # 1.1 % of the page: lone dark pixels
    assert imaging.is_speckled(page)
    prepared = imaging.prepare_page(page, 300.0, rotation=0, deskew=False)
    assert prepared.speckled
    assert prepared.ink[160:290, 120:380].mean() < 3  # paper between the rules: (almost) no ink left
    assert prepared.ink[151, 100:400].all() and prepared.ink[200:220, 101].any()
    params = LayoutParams(dpi=150)
    blobs = np.zeros((100, 100), np.uint8)
    blobs[10:13, 10:13] = 255  # a noise cluster
    blobs[40:55, 40:42] = 255  # a "1"
    kept = layout.drop_small_blobs(blobs, params)
    assert kept[11, 11] == 0 and kept[45, 41] == 255


def test_long_line_on_a_tilted_page_is_cut_upright() -> None:
    """A line crop across a 1.5-degree tilt is resampled, so it holds none of the line below."""
    img = np.full((400, 1600, 3), 255, np.uint8)
    img[100:130, 100:1500] = 0
    img[140:170, 100:1500] = 0
    m = cv2.getRotationMatrix2D((800, 200), -1.5, 1.0)
    tilted = cv2.warpAffine(img, m, (1600, 400), borderValue=(255, 255, 255))
    page = imaging.prepare_page(tilted, 300.0, rotation=0, deskew=True, work_dpi=300.0)
    assert abs(page.transform.angle) == pytest.approx(1.5, abs=0.2)
    rows = np.flatnonzero((page.ink > 0).mean(axis=1) > 0.5)
    first = rows[: int(np.argmax(np.diff(rows) > 1)) + 1]  # the rows of the upper line
    cols = np.flatnonzero(page.ink[first].any(axis=0))
    cy = (first[0] + first[-1] + 1) / 2
    line = BBox(cols[0] + 30, cy - 20, cols[-1] - 30, cy + 20)
    piece = imaging.crop(page.source, page.transform, line)
    assert piece.shape[0] == pytest.approx(40, abs=2)
    assert piece[:2].min() > 200 and piece[-2:].min() > 200 and piece[17:23].max() < 60


def test_text_is_vertical_on_turned_text() -> None:
    mask = np.zeros((600, 600), np.uint8)
    for row in range(8):
        _blocks(mask, 40, 40 + row * 50, 18, size=22, gap=4)
    assert imaging.text_is_vertical(mask, 150) is False
    assert imaging.text_is_vertical(np.ascontiguousarray(np.rot90(mask)), 150) is True
    assert imaging.text_is_vertical(np.zeros((600, 600), np.uint8), 150) is None


# ------------------------------------------------------------------------------------------- real pages


@needs_scans
def test_clean_page1_grid_has_the_merged_cells_of_the_form() -> None:
    from pipeline.scan import read_page

    layout_, _ = read_page(PageImage(1, page_image("clean-20-000", 1), 300.0, cached_words("clean-20-000", 1)), None)
    project, indicators = (t for t in layout_.tables)
    assert (project.table.n_rows, indicators.table.n_rows) == (9, 3)
    by_text = {c.text: c.grid for t in layout_.tables for c in t.cells}
    funds = next(g for text, g in by_text.items() if text.startswith("项目资金"))
    assert (funds.row, funds.col, funds.row_span) == (2, 0, 5)  # header row + the 4 fund rows
    outer = next(g for text, g in by_text.items() if text == "绩效指标")
    assert (outer.col, outer.row_span) == (0, 3)  # the outer column runs down the whole block
    assert by_text["产出指标"].row_span == 2 and by_text["数量指标"].row_span == 2
    texts = set(by_text)
    assert {"10,580,000.00", "7,862,478.04", "“G60科创云”能满足15000人同时", "=100%"} <= texts
    assert not any(" " in t and any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts if "G60" not in t)
    assert [w.text for w in layout_.free] == ["财政项目支出绩效自评表", "(2022年度)"]


@needs_scans
def test_notes_page_has_no_table_only_free_lines() -> None:
    page, tables = grid_of(page_image("clean-20-000", 4))
    assert tables == []
    params = LayoutParams(dpi=page.work_dpi)
    _, mask = layout.detect_rulings(page.ink, params)
    lines = layout.free_text_lines(layout.text_mask(page.ink, mask, params), tables, params)
    assert len(lines) == 5


@needs_scans
def test_turned_and_tilted_pages_give_the_same_grid() -> None:
    image = page_image("clean-20-000", 1)
    level, upright = grid_of(image)
    reference = structure(upright)
    page, turned = grid_of(np.ascontiguousarray(np.rot90(image, 1)))  # scanned sideways
    assert page.transform.rotation == 90 and structure(turned) == reference
    _, flipped = grid_of(np.ascontiguousarray(image[::-1, ::-1]), rotation=180)
    assert structure(flipped) == reference
    h, w = image.shape[:2]
    for tilt in (-5.0, 5.0):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), tilt, 1.0)
        tilted = cv2.warpAffine(image, m, (w, h), borderValue=(255, 255, 255))
        page, tables = grid_of(tilted)
        assert page.transform.angle == pytest.approx(level.transform.angle - tilt, abs=0.15)
        assert structure(tables) == reference


@needs_scans
def test_turned_page_boxes_are_in_the_pixels_of_the_page_as_given() -> None:
    from pipeline.scan import read_page

    image = page_image("clean-20-000", 1)
    turned = np.ascontiguousarray(np.rot90(image, 1))
    h, w = image.shape[:2]
    words = tuple(Word(x.text, BBox(x.bbox.y0, w - x.bbox.x1, x.bbox.y1, w - x.bbox.x0), x.confidence)
                  for x in cached_words("clean-20-000", 1))  # the same words, turned with the page
    upright, _ = read_page(PageImage(1, image, 300.0, cached_words("clean-20-000", 1)), None)
    result, _ = read_page(PageImage(1, turned, 300.0, words), None, rotation=90)
    a = next(c for t in upright.tables for c in t.cells if c.text == "10,580,000.00")
    b = next(c for t in result.tables for c in t.cells if c.text == "10,580,000.00")
    box_a, box_b = a.words[0].bbox, b.words[0].bbox
    assert box_b.x0 == pytest.approx(box_a.y0, abs=3) and box_b.y1 == pytest.approx(w - box_a.x0, abs=3)
    assert math.isclose(h, turned.shape[1])


@needs_scans
def test_seal_over_the_last_rows_breaks_neither_grid_nor_text() -> None:
    from pipeline.scan import read_page

    fixture = json.loads((DATA / "layout" / "noisy-20-000-p3.json").read_text(encoding="utf-8"))
    result, _ = read_page(PageImage(3, page_image("noisy-20-000", 3), 300.0, cached_words("noisy-20-000", 3)), None)
    (table,) = result.tables
    assert structure([table.table]) == [[tuple(c) for c in fixture["expected"][0]["cells"]]]
    rows: dict[int, list[str]] = {}
    for c in table.cells:
        rows.setdefault(c.grid.row, []).append(c.text)
    assert rows[10][-5:] == ["有效", "有效", "5", "5", "无"]  # the row under the seal's star
    assert rows[11][-6:] == ["相关方满意度", ">=85%", ">=85%", "10", "10", "无"]


@needs_scans
def test_gray_binarised_jpeg_damaged_and_speckled_scans_give_the_same_grid() -> None:
    image = page_image("clean-20-000", 2)
    _, reference = grid_of(image)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    binarised = gray < 150  # True = ink, as a bilevel TIFF decodes
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 12])
    assert ok
    damaged = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert damaged is not None
    speckled = image.copy()
    rng = np.random.default_rng(7)
    for x, y in zip(rng.integers(0, image.shape[1] - 8, 3000), rng.integers(0, image.shape[0] - 8, 3000),
                    strict=True):
        speckled[y:y + rng.integers(2, 7), x:x + rng.integers(2, 7)] = 40
    for variant in (gray, binarised, damaged, speckled):
        _, tables = grid_of(variant)
        assert structure(tables) == structure(reference)


def _tilted_form_with_faint_text() -> np.ndarray:
    """A colour page: a ruled grid in black, text in black and in faded gray, a red seal, tilted 1.2 degrees."""
    page = np.full((1400, 1000, 3), (236, 234, 228), np.uint8)
    for y in range(200, 1201, 100):
        cv2.line(page, (100, y), (900, y), (20, 20, 20), 3)
    for x in (100, 400, 900):
        cv2.line(page, (x, 200), (x, 1200), (20, 20, 20), 3)
    for k, y in enumerate(range(260, 1200, 100)):
        tone = (40, 40, 40) if k % 2 else (185, 185, 185)  # every other row faded
        cv2.putText(page, f"{k}2,345.00", (130, y), cv2.FONT_HERSHEY_SIMPLEX, 1.1, tone, 2)
        cv2.putText(page, "item", (430, y), cv2.FONT_HERSHEY_SIMPLEX, 1.1, tone, 2)
    cv2.circle(page, (700, 700), 120, (210, 70, 70), 10)
    turn = cv2.getRotationMatrix2D((500, 700), 1.2, 1.0)
    return cv2.warpAffine(page, turn, (1000, 1400), borderValue=(236, 234, 228))


def test_prepared_masks_and_crops_are_those_of_each_step_on_its_own() -> None:
    """The shortcuts of page preparation change no pixel: both masks deskewed in one warp, the page's
    gray handed over from the blank check, line crops cut from the seal-free gray."""
    page = _tilted_form_with_faint_text()
    luminance = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    prepared = imaging.prepare_page(page, 300, luminance=luminance)
    assert prepared.text_ink is not None and abs(prepared.transform.angle) > 0.5
    ink, light, _ = imaging.ink_masks(page, 300, 0.5)
    assert light is not None
    for shortcut, mask in ((prepared.ink, ink), (prepared.text_ink, light)):
        alone = imaging.apply_transform(mask, prepared.transform, fill=0, interpolation=cv2.INTER_NEAREST)
        assert np.array_equal(shortcut, alone)
    without_gray = imaging.PreparedPage(page, prepared.ink, prepared.transform, 300, prepared.work_dpi,
                                        prepared.vertical_text, prepared.text_ink, prepared.speckled)
    boxes = [BBox(60, y, 440, y + 30) for y in range(120, 600, 50)] + [BBox(60, 300, 120, 330)]
    boxes += [BBox(270, y, 440, y + 20) for y in range(280, 420, 20)]  # across the seal's ring
    assert any(imaging.is_sliceable(prepared.transform, b) for b in boxes)
    assert any(not imaging.is_sliceable(prepared.transform, b) for b in boxes)
    for box in boxes:
        assert np.array_equal(imaging.ocr_crop(prepared, box), imaging.ocr_crop(without_gray, box))
