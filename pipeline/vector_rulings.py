"""Ruling lines of a text-layer PDF page read from its vector drawing, so the page is never rendered.

Office-made PDFs draw their table rules as vector paths (stroked lines, stroked rectangles, thin filled
rectangles). Reading them straight from the page objects (pypdfium2) gives the same segments the raster
path finds in the ink of a 300-dpi rendering (:func:`pipeline.layout.detect_rulings`), for a fraction of
its cost: no rendering, no image preparation. The segments are given in the pixels of the page rendered at
the reading resolution (the frame the text-layer words use, :func:`pipeline.textlayer.text_layer_words`),
and :func:`work_rulings` maps them into the working frame a prepared page would have (150 dpi, upright),
where :func:`pipeline.layout.find_tables` runs with the same thresholds as on a rendered page.

Only what would be ink counts: paths whose stroke or fill is dark after the seal filter of
:func:`pipeline.imaging.seal_free_gray` (a red rule vanishes there as well), straight axis-parallel
pieces (curves and diagonals are no rules), thin ones (a filled box is a blob, not a rule). Form
XObjects are followed with their matrices. A page that also draws images or shadings may hold rules
only in its pixels (a scan with an OCR text layer): it takes this path only when its vectors form a
table; otherwise the caller renders it as before.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.datamodel import PageImage
from pipeline.imaging import INK_THRESHOLD, WORK_DPI, PageTransform
from pipeline.layout import LayoutParams, PageTable, Rulings, Segment, find_tables, merge_collinear
from pipeline.textlayer import _to_device

MAX_DEPTH = 4  # nesting of form XObjects followed
# A piece is a rule along an axis when it leans less than this across per unit along (office rules are
# exactly straight; a slash drawn in an empty cell is not a rule).
MAX_SLOPE = 0.02
# Pieces of one rule drawn separately (each cell's border on its own) print as one run of ink when they
# meet within this many inches.
CONTIGUOUS = 0.01

_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_NO_RULINGS = Rulings((), ())


@dataclass(frozen=True, slots=True)
class VectorPage(PageImage):
    """A text-layer PDF page whose rules come from its vector drawing: ``image`` is None (never rendered).

    ``rulings`` are in the pixels of the page rendered at ``dpi`` (as the text-layer words), ``size`` is
    that rendering's (width, height).
    """

    rulings: Rulings = _NO_RULINGS
    size: tuple[int, int] = (0, 0)


def _compose(inner: _Matrix, outer: _Matrix) -> _Matrix:
    """``inner`` then ``outer`` (PDF row-vector convention: p' = p x inner x outer)."""
    a, b, c, d, e, f = inner
    a2, b2, c2, d2, e2, f2 = outer
    return (a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2,
            e * a2 + f * c2 + e2, e * b2 + f * d2 + f2)


def _is_ink(r: int, g: int, b: int, alpha: int) -> bool:
    """Whether a colour prints as ink in the raster path (seal-free gray at or under the ink threshold)."""
    if alpha < 128:
        return False
    gray = max(0.299 * r + 0.587 * g + 0.114 * b, float(r))
    return round(gray) <= INK_THRESHOLD


@dataclass
class _Collector:
    """Walks a page's objects, gathering straight pieces in PDF user space with their thickness (points)."""

    pieces: list[tuple[float, float, float, float, float]]  # x0, y0, x1, y1, thickness
    raster: bool = False  # an image or shading was drawn: rules may hide in its pixels

    def walk(self, raw: Any, matrix: _Matrix, depth: int) -> None:
        import pypdfium2.raw as pdfium_c

        kind = pdfium_c.FPDFPageObj_GetType(raw)
        if kind in (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_SHADING):
            self.raster = True
            return
        if kind not in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_FORM):
            return
        m = pdfium_c.FS_MATRIX()
        own = (m.a, m.b, m.c, m.d, m.e, m.f) if pdfium_c.FPDFPageObj_GetMatrix(raw, m) else _IDENTITY
        full = _compose(own, matrix)
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            if depth >= MAX_DEPTH:
                self.raster = True  # not followed: let the raster path look at it
                return
            for i in range(pdfium_c.FPDFFormObj_CountObjects(raw)):
                child = pdfium_c.FPDFFormObj_GetObject(raw, i)
                if child:
                    self.walk(child, full, depth + 1)
            return
        self._path(raw, full)

    def _path(self, raw: Any, m: _Matrix) -> None:
        import pypdfium2.raw as pdfium_c

        fill_mode, stroke = ctypes.c_int(), pdfium_c.FPDF_BOOL()
        if not pdfium_c.FPDFPath_GetDrawMode(raw, fill_mode, stroke):
            return
        rgba = [ctypes.c_uint() for _ in range(4)]
        stroked = bool(stroke.value) and bool(pdfium_c.FPDFPageObj_GetStrokeColor(raw, *rgba)) and _is_ink(
            *(v.value for v in rgba))
        filled = fill_mode.value != pdfium_c.FPDF_FILLMODE_NONE and bool(
            pdfium_c.FPDFPageObj_GetFillColor(raw, *rgba)) and _is_ink(*(v.value for v in rgba))
        if not (stroked or filled):
            return
        a, b, c, d, e, f = m
        scale = math.sqrt(abs(a * d - b * c))
        width = 0.0
        if stroked:
            w = ctypes.c_float()
            width = float(w.value) if pdfium_c.FPDFPageObj_GetStrokeWidth(raw, w) else 1.0
            width = max(width * scale, 0.24)  # a hairline prints one device pixel (~1/300 in)
        subpaths: list[list[tuple[float, float]]] = []
        closed: list[bool] = []
        px, py = ctypes.c_float(), ctypes.c_float()
        for i in range(pdfium_c.FPDFPath_CountSegments(raw)):
            seg = pdfium_c.FPDFPath_GetPathSegment(raw, i)
            if not seg or not pdfium_c.FPDFPathSegment_GetPoint(seg, px, py):
                continue
            x, y = px.value, py.value
            point = (x * a + y * c + e, x * b + y * d + f)
            kind = pdfium_c.FPDFPathSegment_GetType(seg)
            if kind == pdfium_c.FPDF_SEGMENT_MOVETO or not subpaths:
                subpaths.append([point])
                closed.append(False)
            elif kind == pdfium_c.FPDF_SEGMENT_LINETO:
                subpaths[-1].append(point)
            else:  # a curve: not part of a rule; break the polyline there
                subpaths.append([point])
                closed.append(False)
            if pdfium_c.FPDFPathSegment_GetClose(seg):
                closed[-1] = True
        for points, is_closed in zip(subpaths, closed, strict=True):
            if filled:
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
                if x1 - x0 >= y1 - y0:
                    mid = (y0 + y1) / 2
                    self.pieces.append((x0, mid, x1, mid, y1 - y0))
                else:
                    mid = (x0 + x1) / 2
                    self.pieces.append((mid, y0, mid, y1, x1 - x0))
            if stroked:
                ring = [*points, points[0]] if is_closed and len(points) > 2 else points
                for (ax, ay), (bx, by) in itertools.pairwise(ring):
                    self.pieces.append((ax, ay, bx, by, width))


def page_pieces(pdf_page: Any) -> tuple[list[tuple[float, float, float, float, float]], bool]:
    """Straight drawn pieces of a ``pypdfium2.PdfPage`` in PDF user space ((x0, y0, x1, y1, thickness)
    in points), and whether the page also draws images or shadings."""
    import pypdfium2.raw as pdfium_c

    collector = _Collector([])
    for i in range(pdfium_c.FPDFPage_CountObjects(pdf_page.raw)):
        obj = pdfium_c.FPDFPage_GetObject(pdf_page.raw, i)
        if obj:
            collector.walk(obj, _IDENTITY, 0)
    return collector.pieces, collector.raster


def page_rulings(pdf_page: Any, scale: float) -> tuple[Rulings, bool]:
    """Rule segments of a PDF page in the pixels of ``page.render(scale=scale)`` (honouring /Rotate and
    the crop box, as the text-layer words), and whether the page also draws images or shadings.

    Pieces drawn separately that print as one run of ink are joined; curves, diagonals and pieces too
    short or too thick to pass the raster path's line filter are left out.
    """
    pieces, raster = page_pieces(pdf_page)
    rotation = int(pdf_page.get_rotation()) % 360
    crop = tuple(float(v) for v in pdf_page.get_cropbox())
    width_pt, height_pt = pdf_page.get_size()
    w_px, h_px = width_pt * scale, height_pt * scale
    dpi = 72.0 * scale
    horizontal: list[Segment] = []
    vertical: list[Segment] = []
    for x0, y0, x1, y1, thick in pieces:
        ax, ay = _to_device(x0, y0, crop, rotation, scale)  # type: ignore[arg-type]
        bx, by = _to_device(x1, y1, crop, rotation, scale)  # type: ignore[arg-type]
        dx, dy = abs(bx - ax), abs(by - ay)
        t = thick * scale
        if dx >= dy:
            if dy > MAX_SLOPE * dx:
                continue
            (sx, sy), (ex, ey) = sorted(((ax, ay), (bx, by)))
            sx, ex = max(0.0, sx), min(w_px, ex)
            if ex > sx and 0.0 <= sy <= h_px:
                horizontal.append(Segment(sx, sy, ex, ey, True, t))
        else:
            if dx > MAX_SLOPE * dy:
                continue
            (sy, sx), (ey, ex) = sorted(((ay, ax), (by, bx)))
            sy, ey = max(0.0, sy), min(h_px, ey)
            if ey > sy and 0.0 <= sx <= w_px:
                vertical.append(Segment(sx, sy, ex, ey, False, t))
    params = LayoutParams(dpi=dpi)
    return Rulings(tuple(_lines(horizontal, params, params.min_h_line)),
                   tuple(_lines(vertical, params, params.min_v_line))), raster


def _lines(pieces: list[Segment], params: LayoutParams, min_length: float) -> list[Segment]:
    """Pieces that print as one run joined; runs the raster line filter would drop left out (shorter than
    its opening, or blobs: thicker than a rule unless a long double rule); then broken lines joined as
    :func:`pipeline.layout.detect_rulings` joins them."""
    runs = merge_collinear(pieces, replace(params, join_gap=CONTIGUOUS))
    max_thick, max_double = params.px(params.max_thickness), params.px(params.max_double)
    double_length = params.px(params.min_double_length)
    kept = [s for s in runs
            if s.length + s.thickness >= params.px(min_length)
            and not (s.thickness > max_thick and (s.thickness > max_double or s.length < double_length))]
    return merge_collinear(kept, params)


def work_frame(size: tuple[int, int], dpi: float, rotation: int = 0) -> tuple[PageTransform, float]:
    """The transform from page pixels to the working frame a prepared page would have, and its dpi."""
    scale = min(1.0, WORK_DPI / dpi)
    return PageTransform.build(size[0], size[1], rotation, 0.0, scale), dpi * scale


def _mapped(seg: Segment, transform: PageTransform) -> Segment:
    (ax, ay), (bx, by) = transform.to_prepared(np.array([[seg.x0, seg.y0], [seg.x1, seg.y1]])).tolist()
    thickness = seg.thickness * transform.scale
    if abs(bx - ax) >= abs(by - ay):
        (ax, ay), (bx, by) = sorted(((ax, ay), (bx, by)))
        return Segment(ax, ay, bx, by, True, thickness)
    (ay, ax), (by, bx) = sorted(((ay, ax), (by, bx)))
    return Segment(ax, ay, bx, by, False, thickness)


def work_rulings(rulings: Rulings, transform: PageTransform) -> Rulings:
    """Page-pixel rulings in the working frame of ``transform`` (a quarter turn swaps their kinds)."""
    segs = [_mapped(s, transform) for s in (*rulings.horizontal, *rulings.vertical)]
    return Rulings(tuple(s for s in segs if s.horizontal), tuple(s for s in segs if not s.horizontal))


def vector_tables(rulings: Rulings, size: tuple[int, int], dpi: float, params: LayoutParams | None = None,
                  rotation: int = 0) -> tuple[list[PageTable], PageTransform, LayoutParams]:
    """The tables of page-pixel ``rulings`` in the working frame, with that frame's transform and params."""
    transform, work_dpi = work_frame(size, dpi, rotation)
    work_params = replace(params or LayoutParams(), dpi=work_dpi)
    return find_tables(work_rulings(rulings, transform), work_params), transform, work_params


def vector_page(pdf_page: Any, number: int, dpi: float, size: tuple[int, int], words: tuple[Any, ...],
                ) -> VectorPage | None:
    """The page read from its vectors, or None when it must be rendered: it draws images or shadings
    and its vector rules form no table (rules may be in the pixels of a scan under an OCR layer)."""
    rulings, raster = page_rulings(pdf_page, dpi / 72.0)
    if raster and not vector_tables(rulings, size, dpi)[0]:
        return None
    return VectorPage(number=number, image=None, dpi=dpi, text_words=words, rulings=rulings, size=size)
