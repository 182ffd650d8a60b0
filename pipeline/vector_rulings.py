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
import functools
import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.datamodel import PageImage
from pipeline.imaging import INK_THRESHOLD, WORK_DPI, PageTransform
from pipeline.layout import LayoutParams, PageTable, Rulings, Segment, find_tables, merge_collinear
from pipeline.textlayer import _to_device, untyped

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


@functools.cache
def _functions() -> tuple[Any, ...]:
    import pypdfium2.raw as c

    return tuple(untyped(f) for f in (
        c.FPDFPage_CountObjects, c.FPDFPage_GetObject, c.FPDFPageObj_GetType, c.FPDFPageObj_GetMatrix,
        c.FPDFFormObj_CountObjects, c.FPDFFormObj_GetObject, c.FPDFPath_GetDrawMode, c.FPDFPageObj_GetStrokeColor,
        c.FPDFPageObj_GetFillColor, c.FPDFPageObj_GetStrokeWidth, c.FPDFPath_CountSegments, c.FPDFPath_GetPathSegment,
        c.FPDFPathSegment_GetPoint, c.FPDFPathSegment_GetType, c.FPDFPathSegment_GetClose))


class _Pdfium:
    """The pdfium calls of the walk on plain addresses (:func:`pipeline.textlayer.untyped`), with the
    out-parameters they fill: per path, converting typed arguments and allocating the out-parameters
    cost more than pdfium's work. One per page (the out-parameters are not shared between threads)."""

    def __init__(self) -> None:
        import pypdfium2.raw as c

        (self.count_objects, self.get_object, self.object_type, self.get_matrix, self.count_children,
         self.get_child, self.draw_mode, self.stroke_color, self.fill_color, self.stroke_width, self.count_segments,
         self.get_segment, self.segment_point, self.segment_type, self.segment_close) = _functions()
        self.raster_kinds = (c.FPDF_PAGEOBJ_IMAGE, c.FPDF_PAGEOBJ_SHADING)
        self.path_kind, self.form_kind = c.FPDF_PAGEOBJ_PATH, c.FPDF_PAGEOBJ_FORM
        self.fill_none = c.FPDF_FILLMODE_NONE
        self.moveto, self.lineto = c.FPDF_SEGMENT_MOVETO, c.FPDF_SEGMENT_LINETO
        address = ctypes.addressof
        self.matrix = (ctypes.c_float * 6)()  # FS_MATRIX: a, b, c, d, e, f
        self.fill_mode, self.stroke = ctypes.c_int(), ctypes.c_int()
        self.rgba = (ctypes.c_uint * 4)()
        self.width, self.px, self.py = ctypes.c_float(), ctypes.c_float(), ctypes.c_float()
        self.matrix_at = address(self.matrix)
        self.fill_mode_at, self.stroke_at = address(self.fill_mode), address(self.stroke)
        self.rgba_at = tuple(address(self.rgba) + k * ctypes.sizeof(ctypes.c_uint) for k in range(4))
        self.width_at, self.px_at, self.py_at = address(self.width), address(self.px), address(self.py)


@dataclass
class _Collector:
    """Walks a page's objects, gathering straight pieces in PDF user space with their thickness (points)."""

    pieces: list[tuple[float, float, float, float, float]]  # x0, y0, x1, y1, thickness
    pdf: _Pdfium
    raster: bool = False  # an image or shading was drawn: rules may hide in its pixels

    def walk(self, raw: int, matrix: _Matrix, depth: int) -> None:
        pdf = self.pdf
        kind = pdf.object_type(raw)
        if kind in pdf.raster_kinds:
            self.raster = True
            return
        if kind != pdf.path_kind and kind != pdf.form_kind:
            return
        own = tuple(pdf.matrix) if pdf.get_matrix(raw, pdf.matrix_at) else _IDENTITY
        full = _compose(own, matrix)
        if kind == pdf.form_kind:
            if depth >= MAX_DEPTH:
                self.raster = True  # not followed: let the raster path look at it
                return
            for i in range(pdf.count_children(raw)):
                child = pdf.get_child(raw, i)
                if child:
                    self.walk(child, full, depth + 1)
            return
        self._path(raw, full)

    def _path(self, raw: int, m: _Matrix) -> None:
        pdf = self.pdf
        if not pdf.draw_mode(raw, pdf.fill_mode_at, pdf.stroke_at):
            return
        rgba, rgba_at = pdf.rgba, pdf.rgba_at
        stroked = bool(pdf.stroke.value) and bool(pdf.stroke_color(raw, *rgba_at)) and _is_ink(*rgba)
        filled = pdf.fill_mode.value != pdf.fill_none and bool(pdf.fill_color(raw, *rgba_at)) and _is_ink(*rgba)
        if not (stroked or filled):
            return
        a, b, c, d, e, f = m
        scale = math.sqrt(abs(a * d - b * c))
        width = 0.0
        if stroked:
            width = float(pdf.width.value) if pdf.stroke_width(raw, pdf.width_at) else 1.0
            width = max(width * scale, 0.24)  # a hairline prints one device pixel (~1/300 in)
        subpaths: list[list[tuple[float, float]]] = []
        closed: list[bool] = []
        px, py, px_at, py_at = pdf.px, pdf.py, pdf.px_at, pdf.py_at
        for i in range(pdf.count_segments(raw)):
            seg = pdf.get_segment(raw, i)
            if not seg or not pdf.segment_point(seg, px_at, py_at):
                continue
            x, y = px.value, py.value
            point = (x * a + y * c + e, x * b + y * d + f)
            kind = pdf.segment_type(seg)
            if kind == pdf.moveto or not subpaths:
                subpaths.append([point])
                closed.append(False)
            elif kind == pdf.lineto:
                subpaths[-1].append(point)
            else:  # a curve: not part of a rule; break the polyline there
                subpaths.append([point])
                closed.append(False)
            if pdf.segment_close(seg):
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
    pdf = _Pdfium()
    collector = _Collector([], pdf)
    page = ctypes.cast(pdf_page.raw, ctypes.c_void_p).value
    for i in range(pdf.count_objects(page)):
        obj = pdf.get_object(page, i)
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
    a, b, c, d, e, f = transform.matrix
    if b == 0.0 and d == 0.0:
        # Only a scale and a shift (an upright page): the matrix product's floats without numpy's set-up
        # per segment (as PageTransform.box_to_prepared).
        ax, ay, bx, by = seg.x0 * a + c, seg.y0 * e + f, seg.x1 * a + c, seg.y1 * e + f
    else:
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
