"""The scan reading path: page images -> one logical :class:`~pipeline.datamodel.Table` per document.

Per page (pages are streamed; only the page's text and geometry are kept, never its image). With an OCR
engine, steps 1-2 and the cutting out of step 3's lines run for page n+1 on a background thread
(:mod:`pipeline.lookahead`) while page n is in the recogniser; the engine is only called from the caller's
thread:

1. prepare the image (:func:`pipeline.imaging.prepare_page`): seal-free gray, ink mask, upright (0/90
   from text geometry), deskewed;
2. ruling lines -> table grids with spans (:mod:`pipeline.layout`);
3. text: with a PDF text layer, its words; else, if the engine can read line crops
   (:class:`LineRecognizer`, e.g. RapidOCR), the text lines found inside each cell and outside the
   tables are recognised directly (no full-page detection; lines are found in the lighter text mask
   when the page's print is faint); else the engine's full-page ``recognize`` and the words are
   assigned to cells. An upside-down page is caught by OCR confidence (a sample of lines read both
   ways) and prepared again turned by 180 degrees. Optionally (:data:`SECOND_OPINION`) sure readings
   with digits are read again in a wider margin and a different reading makes them doubtful;
4. cells get their text (reading order, no wrap spaces between Chinese characters), confidence and
   words; every box is mapped back to the pixels of the page image *as given*.

A text-layer PDF page whose rules are vector paths comes without an image
(:class:`~pipeline.vector_rulings.VectorPage`): steps 1-2 are its vector rules mapped into the working frame
a prepared page would have, step 3 its text-layer words.

Then the document: all tables' column lines (as fractions of each table's width) are clustered into one
column grid (``Table.col_edges``); rows are numbered through the document in reading order, each page's
free text lines (title, year, notes) as one-cell ``ruled=False`` rows placed by their height on the
page. Rows split by a page break and merged cells that continue on the next page are left as printed:
joining them needs to know which columns hold values, which is the form profile's job.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from pipeline.datamodel import BBox, Cell, Issue, PageImage, SourceKind, Table, Word
from pipeline.imaging import PageTransform, PreparedPage, ocr_crop, prepare_page, upright_image
from pipeline.layout import (
    GridCell,
    LayoutParams,
    PageTable,
    assign_words,
    cell_text_box,
    cell_text_lines,
    detect_rulings,
    drop_small_blobs,
    find_tables,
    free_lines_from_words,
    free_text_lines,
    group_lines,
    is_dash,
    join_text,
    line_crop_box,
    line_masks,
    remove_specks,
    text_mask,
    text_size,
    unify_columns,
)
from pipeline.lookahead import Done, Lookahead, run_timed
from pipeline.ocr.base import LineRecognizer, OcrEngine
from pipeline.text import clean_cell_text
from pipeline.vector_rulings import VectorPage, vector_tables

# A cell holding nothing but a short thin horizontal bar holds a dash ("not applicable"); recognisers
# read such a bar as 一, _ or nothing at all, so it is read from its shape instead.
DASH = "—"
DASH_CONFIDENCE = 0.95
# Average confidence of a page's sample lines under which the page may be upside down (upright pages of
# the shared scans score 0.91-0.999, the same lines upside down far less).
UPRIGHT_CONFIDENCE = 0.80
ORIENTATION_SAMPLE = 8
# The page's text is faint (and is found in the lighter text mask) when that mask holds this many times
# the text pixels of the fixed threshold inside the cells: faded print measured 2.0-7x, black print
# 0.9-1.5x (its halo; there the lighter mask only adds seal remnants and strokes merged into rule-like
# runs).
FAINT_TEXT_GAIN = 1.8
# Lines holding digits read at least this sure can be read a second time, set in a wider margin; when
# the two readings differ the line's confidence drops to SECOND_OPINION_DOUBT (under the review
# threshold). Off: on 85 documents (shared, clean, noisy, harsh sets) it flagged no silent error that
# was not already caught and cost 40 % more recognition (digit lines are many and short).
SECOND_OPINION = False
SECOND_OPINION_ABOVE = 0.9
SECOND_OPINION_DOUBT = 0.6
# The thread preparing the next page runs this much nicer than the recogniser: ONNX Runtime keeps both
# cores of a 2-core machine busy, and at equal priority the preparation slowed it by as much as it hid
# (wall time a page x0.97-1.01 against reading in turn); nicer, it takes what ORT leaves idle (x0.94 at
# +10, x0.93-0.98 at +19; bench/experiments/lookahead_ab.py, bench/REPORT.md).
PREPARATION_NICER = 10


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What happened to one page. ``transform`` maps original pixels to the prepared (upright,
    deskewed) image the reader worked on; every box in the Table is in original pixels."""

    number: int
    size: tuple[int, int]  # (width, height) of the page image as given
    rotation: int  # clockwise quarter turn applied (0/90/180/270)
    deskew: float  # degrees (counter-clockwise) applied after the turn
    ocr_seconds: float  # wall time inside the OCR engine
    other_seconds: float  # wall time of everything else on this page (preparation, layout, assembly)
    ocr_cpu_seconds: float  # the same as CPU time of this process (all threads)
    other_cpu_seconds: float
    n_words: int  # text lines / words read on the page
    n_tables: int
    n_rows: int
    source: SourceKind
    transform: PageTransform


@dataclass(frozen=True, slots=True)
class ScanResult:
    table: Table
    pages: tuple[PageInfo, ...] = ()
    issues: tuple[Issue, ...] = ()

    @property
    def ocr_seconds(self) -> float:
        return sum(p.ocr_seconds for p in self.pages)

    @property
    def other_seconds(self) -> float:
        return sum(p.other_seconds for p in self.pages)


# ------------------------------------------------------------------------------------------------ per page


@dataclass(frozen=True, slots=True)
class TextCell:
    """A grid cell of one page with what was read in it (``words`` in original page pixels)."""

    grid: GridCell
    text: str
    confidence: float
    words: tuple[Word, ...]  # original pixels


@dataclass(frozen=True, slots=True)
class PageTableText:
    """A page table with its cells' text; ``fractions`` are its column lines as shares of its width."""

    table: PageTable
    cells: tuple[TextCell, ...]
    fractions: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class PageLayout:
    """One page read: its tables (grid geometry in the prepared frame of ``transform``) with the text of
    each cell, and its free text lines (words in original page pixels)."""

    number: int
    tables: tuple[PageTableText, ...]
    free: tuple[Word, ...]  # original pixels
    transform: PageTransform
    n_words: int
    source: SourceKind


def _no_background() -> float:
    return 0.0


@dataclass
class OcrClock:
    """Time spent inside the OCR engine: wall clock and CPU (CPU is steadier on a busy machine).

    CPU is the process's (ONNX Runtime computes on threads of its own) less ``background_cpu``, the CPU
    of the thread that prepares the next page meanwhile.
    """

    ocr: float = 0.0
    ocr_cpu: float = 0.0
    background_cpu: Callable[[], float] = _no_background

    def cpu_now(self) -> float:
        return time.process_time() - self.background_cpu()

    def add(self, wall: float, cpu: float) -> None:
        self.ocr += wall
        self.ocr_cpu += cpu

    @contextlib.contextmanager
    def engine_call(self) -> Iterator[None]:
        """Time the OCR engine call made inside."""
        wall, cpu = time.perf_counter(), self.cpu_now()
        try:
            yield
        finally:
            self.add(time.perf_counter() - wall, self.cpu_now() - cpu)


def _word_to_original(word: Word, transform: PageTransform) -> Word:
    return Word(word.text, transform.box_to_original(word.bbox), word.confidence)


def _read_lines(engine: LineRecognizer, crops: Sequence[np.ndarray], clock: OcrClock) -> list[tuple[str, float]]:
    with clock.engine_call():
        return engine.recognize_lines(crops) if crops else []


def _upright_score(results: Sequence[tuple[str, float]]) -> float:
    """Mean confidence of the characters read (a line counts by its length: one confident character
    read from a speck must not outweigh lines of text)."""
    chars = sum(len(text.strip()) for text, _ in results)
    return sum(conf * len(text.strip()) for text, conf in results) / chars if chars else 0.0


def _reads_better(flipped: Sequence[tuple[str, float]], first: Sequence[tuple[str, float]]) -> bool:
    """Whether the sample reads better turned over: surer on average, and clearly more confident
    characters in all (a noisy page turned over may read as little as 0.46 on average, against 0.36)."""
    def evidence(results: Sequence[tuple[str, float]]) -> float:
        return sum(conf * len(text.strip()) for text, conf in results)

    return (_upright_score(flipped) > _upright_score(first)
            and evidence(flipped) > max(1.5 * evidence(first), evidence(first) + 2.0))


def _cells_from_words(tables: Sequence[PageTable], per_cell: Sequence[Sequence[Word]],
                      transform: PageTransform) -> list[PageTableText]:
    out = []
    k = 0
    for t in tables:
        cells = []
        for c in t.cells:
            words = [w for w in per_cell[k] if w.text.strip()]
            k += 1
            text = join_text(group_lines(words))
            conf = min((w.confidence for w in words), default=1.0)
            cells.append(TextCell(c, text, conf, tuple(_word_to_original(w, transform) for w in words)))
        out.append(PageTableText(t, tuple(cells), t.col_fractions()))
    return out


@contextlib.contextmanager
def _opencv_single_thread() -> Iterator[None]:
    """OpenCV on one thread while a page is read, restored after.

    The page's images are small once shrunk to the working resolution, and OpenCV's thread pool then
    costs more than it gains (measured: 0.19 vs 0.27 s CPU per page); ONNX Runtime has its own threads.
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def read_page(page: PageImage, engine: OcrEngine | None, params: LayoutParams | None = None,
              rotation: int | None = None) -> tuple[PageLayout, OcrClock]:
    """Read one page. Returns the layout and the time spent inside the OCR engine.

    ``rotation`` forces the clockwise quarter turn (None: decided from the page).
    """
    clock = OcrClock()
    with _opencv_single_thread():
        return _read_page(page, engine, params, rotation, clock), clock


def _read_page(page: PageImage, engine: OcrEngine | None, params: LayoutParams | None, rotation: int | None,
               clock: OcrClock) -> PageLayout:
    return _recognise(_prepare(page, engine, params, rotation), engine, clock)


@dataclass(frozen=True, slots=True)
class LinePlan:
    """The text lines of a prepared page, cut out and ready for a line recogniser: everything of the
    page's reading that needs no OCR, so it can run while the page before is being recognised."""

    prepared: PreparedPage
    given: LayoutParams  # the page's parameters before its text size and print were measured
    params: LayoutParams
    tables: tuple[PageTable, ...]
    jobs: tuple[tuple[int, BBox, BBox], ...]  # (cell index or -1 for free text, line box, crop box)
    dashes: tuple[tuple[int, BBox], ...]  # cells holding only a dash, read from its shape
    crops: tuple[np.ndarray, ...]


@dataclass(frozen=True, slots=True)
class PreparedRead:
    """A page as far as it can be read without the OCR engine: done (``layout``: a text-layer page), its
    lines cut out (``plan``: a line recogniser), or prepared for a full-page engine (``prepared``)."""

    page: PageImage
    rotation_fixed: bool
    layout: PageLayout | None = None
    plan: LinePlan | None = None
    prepared: PreparedPage | None = None
    params: LayoutParams | None = None


def _prepare(page: PageImage, engine: OcrEngine | None, params: LayoutParams | None,
             rotation: int | None) -> PreparedRead:
    dpi = float(page.dpi or 300.0)
    fixed = rotation is not None
    if isinstance(page, VectorPage) and page.text_words is not None:
        # Rules from the PDF's vector paths, words from its text layer: nothing to render or prepare.
        return PreparedRead(page, fixed, layout=_layout_from_vectors(page, page.text_words, params, rotation or 0))
    if page.text_words is not None:
        # Text-layer pages come from a PDF renderer: upright by construction (pdfium applies /Rotate).
        prepared = prepare_page(page.image, dpi, rotation=0 if rotation is None else rotation,
                                luminance=page.luminance)
        params = replace(params or LayoutParams(), dpi=prepared.work_dpi)
        return PreparedRead(page, fixed, layout=_layout_from_words(page.number, prepared, params, page.text_words,
                                                                   SourceKind.TEXT_LAYER))
    if engine is None:
        raise ValueError(f"page {page.number} has no text layer and no OCR engine was given")
    prepared = prepare_page(page.image, dpi, rotation=rotation, luminance=page.luminance)
    params = replace(params or LayoutParams(), dpi=prepared.work_dpi)
    if isinstance(engine, LineRecognizer):
        return PreparedRead(page, fixed, plan=_plan_lines(prepared, params))
    return PreparedRead(page, fixed, prepared=prepared, params=params)


def _recognise(ready: PreparedRead, engine: OcrEngine | None, clock: OcrClock) -> PageLayout:
    if ready.layout is not None:
        return ready.layout
    assert engine is not None  # _prepare reads pages without text only with an engine
    if ready.plan is not None:
        return _read_plan(ready.page, ready.plan, engine, clock, ready.rotation_fixed)  # type: ignore[arg-type]
    assert ready.prepared is not None and ready.params is not None
    return _read_full_page(ready.page, ready.prepared, ready.params, engine, clock, ready.rotation_fixed)


def _turned_over(page: PageImage, prepared: PreparedPage, params: LayoutParams, engine: OcrEngine,
                 clock: OcrClock) -> PageLayout:
    turn = (prepared.transform.rotation + 180) % 360
    return _read_page(page, engine, params, turn, clock)


def _plan_lines(prepared: PreparedPage, params: LayoutParams) -> LinePlan:
    given = params
    rulings, lines_mask = detect_rulings(prepared.ink, params)
    tables = find_tables(rulings, params)
    raw = text_mask(prepared.ink, lines_mask)
    if prepared.text_ink is not None:
        inside = _cell_interiors(tables, raw.shape)  # noise outside the tables would blur the comparison
        needed = FAINT_TEXT_GAIN * cv2.countNonZero(cv2.bitwise_and(raw, inside))
        # The lighter text mask is the lighter ink less its rules: where all that ink would not be enough,
        # its rules need not be found (most pages: finding them costs as much as the page's own).
        if cv2.countNonZero(cv2.bitwise_and(prepared.text_ink, inside)) > needed:
            # It holds the rules too, with a wider halo: take its own long runs out.
            light_h, light_v = line_masks(prepared.text_ink, params)
            light = text_mask(prepared.text_ink, cv2.bitwise_or(lines_mask, cv2.bitwise_or(light_h, light_v)))
            if cv2.countNonZero(cv2.bitwise_and(light, inside)) > needed:
                raw = light
                params = replace(params, faint=True)
    if prepared.speckled:
        raw = drop_small_blobs(raw, params)
    size = text_size(raw, tables, params)
    if size is not None:
        params = replace(params, em=size)
    tmask = remove_specks(raw, params)
    shape = prepared.ink.shape
    jobs: list[tuple[int, BBox, BBox]] = []
    dashes: list[tuple[int, BBox]] = []
    for ci, cell in enumerate(c for t in tables for c in t.cells):
        limit = cell_text_box(cell, params)
        boxes = cell_text_lines(tmask, cell.bbox, params)
        if len(boxes) == 1 and is_dash(boxes[0], params, tmask):
            dashes.append((ci, boxes[0]))
            continue
        jobs.extend((ci, b, line_crop_box(b, limit, params, shape)) for b in boxes)
    jobs.extend((-1, b, line_crop_box(b, None, params, shape)) for b in free_text_lines(tmask, tables, params))
    crops = tuple(ocr_crop(prepared, box) for _, _, box in jobs)
    return LinePlan(prepared, given, params, tuple(tables), tuple(jobs), tuple(dashes), crops)


def _read_plan(page: PageImage, plan: LinePlan, engine: LineRecognizer, clock: OcrClock,
               rotation_fixed: bool) -> PageLayout:
    prepared, jobs, crops = plan.prepared, plan.jobs, plan.crops
    # Orientation: read a sample of the widest lines first; a low score means try the page turned over.
    # Lines in cells come first: outside the tables, on a speckled page, wide "lines" are often noise.
    order = sorted(range(len(crops)), key=lambda i: (jobs[i][0] < 0, -crops[i].shape[1]))
    sample = order[:ORIENTATION_SAMPLE]
    results: dict[int, tuple[str, float]] = {}
    first = _read_lines(engine, [crops[i] for i in sample], clock)
    if not rotation_fixed and sample and _upright_score(first) < UPRIGHT_CONFIDENCE:
        flipped = _read_lines(engine, [np.ascontiguousarray(crops[i][::-1, ::-1]) for i in sample], clock)
        if _reads_better(flipped, first):
            return _turned_over(page, prepared, plan.given, engine, clock)  # type: ignore[arg-type]
    results.update(zip(sample, first, strict=True))
    rest = order[ORIENTATION_SAMPLE:]
    results.update(zip(rest, _read_lines(engine, [crops[i] for i in rest], clock), strict=True))
    if SECOND_OPINION:
        _second_opinion(prepared, plan.params, jobs, results, engine, clock)

    cell_words: list[list[Word]] = [[] for t in plan.tables for _ in t.cells]
    for ci, line in plan.dashes:
        cell_words[ci].append(Word(DASH, line, DASH_CONFIDENCE))
    free_words: list[Word] = []
    for i, (ci, line, _) in enumerate(jobs):
        text, conf = results[i]
        text = clean_cell_text(text)
        if not text:
            continue
        word = Word(text, line, float(conf))
        if ci >= 0:
            cell_words[ci].append(word)
        else:
            free_words.append(_word_to_original(word, prepared.transform))
    n_words = sum(len(w) for w in cell_words) + len(free_words)
    return PageLayout(page.number, tuple(_cells_from_words(plan.tables, cell_words, prepared.transform)),
                      tuple(free_words), prepared.transform, n_words, SourceKind.OCR)


def _cell_interiors(tables: Sequence[PageTable], shape: tuple[int, ...]) -> np.ndarray:
    """A mask of the inside of every cell (255), or of the whole page when there is no table."""
    if not tables:
        return np.full(shape[:2], 255, np.uint8)
    inside = np.zeros(shape[:2], np.uint8)
    for t in tables:
        for c in t.cells:
            b = c.bbox
            inside[max(0, int(b.y0) + 2):max(0, int(b.y1) - 2), max(0, int(b.x0) + 2):max(0, int(b.x1) - 2)] = 255
    return inside


def _second_opinion(prepared: PreparedPage, params: LayoutParams, jobs: Sequence[tuple[int, BBox, BBox]],
                    results: dict[int, tuple[str, float]], engine: LineRecognizer, clock: OcrClock) -> None:
    """Read the sure lines that hold digits once more, set in a wider white margin; a different reading
    makes the line doubtful.

    A recogniser can be sure and wrong (a speck read as "." in "不少于40家", confidence 0.999), and a
    wrong number is the costliest silent error. The same line cut with other surroundings is read by
    other CTC alignments: slips like that rarely repeat, true text does. Only lines with digits, read
    at or above :data:`SECOND_OPINION_ABOVE`: the rest is reviewed anyway or is words, and digit lines
    are short, so this costs little recognition time.
    """
    picked = [i for i, (text, conf) in results.items()
              if conf >= SECOND_OPINION_ABOVE and any(ch.isdigit() for ch in text)]
    if not picked:
        return
    # The same crop with a wide white margin: the text is untouched (no neighbouring cell comes in)
    # but sits elsewhere in the recogniser's input.
    side = max(4, round(0.4 * params.px(params.em) / prepared.transform.scale))
    top = max(2, side // 4)
    crops = [cv2.copyMakeBorder(ocr_crop(prepared, jobs[i][2]), top, top, side, side, cv2.BORDER_CONSTANT,
                                value=(255, 255, 255)) for i in picked]
    for i, (text, _) in zip(picked, _read_lines(engine, crops, clock), strict=True):
        first, conf = results[i]
        if _compact(text) != _compact(first):
            results[i] = (first, min(conf, SECOND_OPINION_DOUBT))


def _compact(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _read_full_page(page: PageImage, prepared: PreparedPage, params: LayoutParams, engine: OcrEngine,
                    clock: OcrClock, rotation_fixed: bool) -> PageLayout:
    image, upright = upright_image(prepared)
    with clock.engine_call():
        words = engine.recognize(image)
    score = _upright_score([(w.text, w.confidence) for w in words])
    if not rotation_fixed and words and score < UPRIGHT_CONFIDENCE:
        with clock.engine_call():
            flipped = engine.recognize(np.ascontiguousarray(image[::-1, ::-1]))
        if _reads_better([(w.text, w.confidence) for w in flipped], [(w.text, w.confidence) for w in words]):
            return _turned_over(page, prepared, params, engine, clock)
    del image
    # engine boxes are in the upright full-resolution image: back to the original, then to the work frame
    original = [Word(w.text, upright.box_to_original(w.bbox), w.confidence) for w in words]
    return _layout_from_words(page.number, prepared, params, original, SourceKind.OCR)


def _layout_from_vectors(page: VectorPage, words: Iterable[Word], params: LayoutParams | None,
                         rotation: int) -> PageLayout:
    """Layout of a text-layer page from its vector rules (no image): the tables are found in the working
    frame a prepared page would have, so everything after that is as for a rendered page."""
    tables, transform, params = vector_tables(page.rulings, page.size, float(page.dpi or 300.0), params, rotation)
    return _layout_with_tables(page.number, tables, transform, params, words, SourceKind.TEXT_LAYER)


def _layout_from_words(number: int, prepared: PreparedPage, params: LayoutParams, words: Iterable[Word],
                       source: SourceKind) -> PageLayout:
    """Layout of a page whose words are known (text layer, full-page OCR), words in original pixels."""
    rulings, _ = detect_rulings(prepared.ink, params)
    tables = find_tables(rulings, params)
    return _layout_with_tables(number, tables, prepared.transform, params, words, source)


def _layout_with_tables(number: int, tables: Sequence[PageTable], transform: PageTransform, params: LayoutParams,
                        words: Iterable[Word], source: SourceKind) -> PageLayout:
    local = [Word(w.text, transform.box_to_prepared(w.bbox), w.confidence) for w in words]
    assignment = assign_words(local, tables)
    per_cell: list[list[Word]] = []
    for ti, t in enumerate(tables):
        for ci in range(len(t.cells)):
            per_cell.append(assignment.cells.get((ti, ci), []))
    free = [_word_to_original(w, transform) for w in free_lines_from_words(assignment.free, params)]
    return PageLayout(number, tuple(_cells_from_words(tables, per_cell, transform)), tuple(free), transform,
                      len(local), source)


# ------------------------------------------------------------------------------------------------ document


def _page_rows(layout: PageLayout) -> list[tuple[float, str, int, int]]:
    """Row items of a page in reading order: (y, kind, index, sub-row); kind 't' table row, 'f' free line."""
    items: list[tuple[float, str, int, int]] = []
    spans = []
    for ti, t in enumerate(layout.tables):
        top, bottom = t.table.rows[0].pos, t.table.rows[-1].pos
        spans.append((top, bottom))
        items.extend((t.table.rows[r].pos + 1e-3 * r, "t", ti, r) for r in range(t.table.n_rows))
    inverse = layout.transform
    for fi, w in enumerate(layout.free):
        # Rounded: lines at one height (a row of specks) keep their reading order whatever the last bit
        # of the mapping back and forth.
        y = round(inverse.box_to_prepared(w.bbox).cy, 6)
        for top, bottom in spans:
            if top <= y <= bottom:  # beside a table: after it, never between its rows (spans stay intact)
                y = bottom + 1e-3
        items.append((y, "f", fi, 0))
    items.sort(key=lambda it: (it[0], it[1] == "t"))
    return items


def assemble(pages: Sequence[PageLayout]) -> tuple[Table, list[int]]:
    """The document table from page layouts; also returns the number of rows per page."""
    fractions = [t.fractions for p in pages for t in p.tables]
    edges, maps = unify_columns(fractions)
    n_cols = max(1, len(edges) - 1)
    cells: list[Cell] = []
    row_pages: list[int] = []
    rows_per_page: list[int] = []
    table_k = 0
    kinds = {p.source for p in pages}
    for page in pages:
        start = len(row_pages)
        row_of: dict[tuple[int, int], int] = {}
        page_maps = maps[table_k:table_k + len(page.tables)]
        table_k += len(page.tables)
        for _, kind, index, sub in _page_rows(page):
            row = len(row_pages)
            row_pages.append(page.number)
            if kind == "f":
                w = page.free[index]
                cells.append(Cell(row=row, col=0, text=w.text, row_span=1, col_span=n_cols, bbox=w.bbox,
                                  confidence=w.confidence, page=page.number, ruled=False, words=(w,)))
            else:
                row_of[(index, sub)] = row
        for ti, t in enumerate(page.tables):
            cmap = page_maps[ti]
            for tc in t.cells:
                g = tc.grid
                r0 = row_of[(ti, g.row)]
                r1 = row_of[(ti, g.last_row)]
                c0, c1 = cmap[g.col], cmap[g.col + g.col_span]
                cells.append(Cell(row=r0, col=c0, text=tc.text, row_span=r1 - r0 + 1, col_span=max(1, c1 - c0),
                                  bbox=page.transform.box_to_original(g.bbox), confidence=tc.confidence,
                                  page=page.number, ruled=True, words=tc.words))
        rows_per_page.append(len(row_pages) - start)
    cells.sort(key=lambda c: (c.row, c.col))
    kind = SourceKind.TEXT_LAYER if kinds == {SourceKind.TEXT_LAYER} else SourceKind.OCR
    table = Table(cells=tuple(cells), n_rows=len(row_pages), n_cols=n_cols, row_pages=tuple(row_pages), kind=kind,
                  col_edges=tuple(round(e, 5) for e in edges))
    return table, rows_per_page


def read_pages(pages: Iterable[PageImage], engine: OcrEngine | None, params: LayoutParams | None = None, *,
               lookahead: bool = True) -> ScanResult:
    """Read a document's pages (streamed, a few images at a time) into one logical table.

    ``engine`` may be None when every page has a text layer. Pages without any ruled table are listed in
    ``issues`` (code ``page_without_table``); their text is kept as free-text rows. With ``lookahead``, when
    the first page needs OCR, each next page is rendered and prepared (masks, rules, line crops) on a
    background thread while the one before is recognised: the same results as page by page, with the
    time outside OCR mostly hidden behind it.
    """
    layouts: list[PageLayout] = []
    timings: list[tuple[float, float, float, float]] = []  # ocr wall, other wall, ocr cpu, other cpu
    issues: list[Issue] = []
    sizes: list[tuple[int, int]] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_opencv_single_thread())
        remaining = iter(pages)

        def prepare(page: PageImage) -> PreparedRead:
            return _prepare(page, engine, params, None)

        source: Iterator[Done[PreparedRead]] = (run_timed(prepare, page) for page in remaining)
        background = _no_background
        mark = time.perf_counter()  # the main thread's last moment of work: what follows is waiting for a page
        first = next(source, None)
        if first is not None and first.result.layout is None and lookahead:
            # The first page needs OCR: the rest are prepared ahead. A text-layer document is read in turn
            # (nothing to overlap; the thread's hand-offs would cost more than they save).
            ahead = stack.enter_context(Lookahead(remaining, prepare, nicer=PREPARATION_NICER,
                                                  name="formrescue-page-preparation"))
            source, background = iter(ahead), ahead.background_cpu
        if first is not None:
            source = itertools.chain([first], source)
        del first  # held by the chain until its turn is over, not for the whole document
        for done in source:
            clock = OcrClock(background_cpu=background)
            cpu = clock.cpu_now()
            layout = _recognise(done.result, engine, clock)
            page, preparation_cpu = done.result.page, done.cpu
            del done  # the page's masks and crops
            if isinstance(page, VectorPage):
                w, h = page.size
            else:
                h, w = page.image.shape[:2]
            sizes.append((int(w), int(h)))
            layouts.append(layout)
            if not layout.tables:
                issues.append(Issue("page_without_table", f"page {page.number} has no ruled table"
                                    + (" (only free text)" if layout.free else " and no text")))
            del page  # the image is not kept: only text and geometry travel on
            now = time.perf_counter()
            # Outside OCR: the wait for this page's preparation (all of it when read in turn) and putting its
            # words into cells; in CPU, its preparation wherever it ran and that same main-thread work.
            other_cpu = preparation_cpu + clock.cpu_now() - cpu - clock.ocr_cpu
            timings.append((clock.ocr, now - mark - clock.ocr, clock.ocr_cpu, other_cpu))
            mark = now
    t0, c0 = time.perf_counter(), time.process_time()
    table, rows_per_page = assemble(layouts)
    share = (time.perf_counter() - t0) / max(1, len(layouts))
    share_cpu = (time.process_time() - c0) / max(1, len(layouts))
    page_infos = tuple(
        PageInfo(number=layout.number, size=size, rotation=layout.transform.rotation, deskew=layout.transform.angle,
                 ocr_seconds=ocr, other_seconds=other + share, ocr_cpu_seconds=ocr_cpu,
                 other_cpu_seconds=other_cpu + share_cpu, n_words=layout.n_words, n_tables=len(layout.tables),
                 n_rows=n_rows, source=layout.source, transform=layout.transform)
        for layout, (ocr, other, ocr_cpu, other_cpu), size, n_rows in zip(layouts, timings, sizes, rows_per_page,
                                                                           strict=True))
    return ScanResult(table=table, pages=page_infos, issues=tuple(issues))


def format_table(table: Table) -> str:
    """A plain-text dump of a table: one line per row, cells as ``col+span:text`` (``~`` marks free text)."""
    lines = [f"# kind={table.kind.value} rows={table.n_rows} cols={table.n_cols} "
             f"col_edges={[round(e, 3) for e in table.col_edges]}"]
    for r, row in enumerate(table.rows()):
        page = table.row_pages[r] if r < len(table.row_pages) else "?"
        parts = []
        for c in row:
            mark = "" if c.ruled else "~"
            span = f"+{c.col_span}" + (f"x{c.row_span}" if c.row_span > 1 else "")
            parts.append(f"{mark}{c.col}{span}:{c.text}")
        lines.append(f"p{page} r{r:03d} | " + " | ".join(parts))
    return "\n".join(lines) + "\n"
