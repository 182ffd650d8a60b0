"""Ruling lines -> table grids with explicit spans; text lines inside cells and outside tables; words to cells.

Everything works on a prepared page (upright, deskewed, see :mod:`pipeline.imaging`) in its pixel frame,
as pure functions, so each step can be tested on small JSON fixtures (``tests/data/layout``).

The steps:

1. :func:`detect_rulings`: long thin straight runs of ink (morphological opening) become line
   :class:`Segment` s with their measured slope (a double rule blurred into one thick band is one
   line); each is traced along the ink to its true ends (never past the first rule it crosses), and
   collinear pieces broken by noise or faint print are joined; :func:`prune_text_runs` then drops runs
   of character strokes (ink flanks them as it flanks a stroke) and cuts a rule's end that runs on
   into text or past the rule it ends on.
2. :func:`find_tables`: segments that touch form a table (runs of character strokes, which touch a
   border at one end at most, are dropped); a double rule splits two tables printed back to back; per
   table, segments are clustered into grid lines (:class:`GridLine`; close lines merge only when they
   run side by side), every grid boundary is tested for how much of it is actually ruled, and unruled
   boundaries merge grid cells into spans (:class:`GridCell`); grid cells outside the ruled outline are
   not cells.
3. :func:`cell_text_lines` / :func:`free_text_lines`: text lines found from the ink profile inside a
   cell (or outside every table), the boxes a line recogniser reads; the page's text size is measured
   first (:func:`text_size`), so lines of small print set tight are split and dust is told from text.
4. :func:`assign_words` and :func:`join_text`: words from a full-page OCR or a PDF text layer go to the
   cell that holds them (a word straddling a cell border is split there) and are joined in reading order.
5. :func:`unify_columns`: the column lines of every table of a document, normalised by each table's outer
   border, matched table by table into one document-wide column grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipeline.datamodel import BBox, Word
from pipeline.imaging import components
from pipeline.text import clean_cell_text


@dataclass(frozen=True, slots=True)
class LayoutParams:
    """Geometry thresholds, in inches so they hold at any resolution; ``px`` converts."""

    dpi: float = 300.0
    min_h_line: float = 0.27  # a horizontal rule is longer than any character (title chars ~0.2")
    min_v_line: float = 0.20  # shorter than the lowest one-line row (~0.3"), longer than a character stroke
    max_thickness: float = 0.05  # thicker "lines" are blobs: a lid band, a filled box
    max_double: float = 0.12  # ... unless long: a double rule (two tables printed back to back) blurred into one
    min_double_length: float = 1.0
    join_gap: float = 0.15  # collinear pieces closer than this are one broken line
    touch: float = 0.05  # a line ends "at" another within this distance
    cluster: float = 0.03  # segments within this distance are one grid line (a double rule is further apart)
    min_cell: float = 0.10  # grid rows/columns thinner than this are a double border, not a row
    coverage: float = 0.5  # share of a grid boundary that must be ruled to separate two cells
    em: float = 11 / 72  # expected body text height (11 pt)
    cell_margin: float = 0.02  # inset of a cell's text area from its ruling lines
    faint: bool = False  # faint print: a line's first or last character may be missing from its ink box

    def px(self, inches: float) -> float:
        return inches * self.dpi


@dataclass(frozen=True, slots=True)
class Segment:
    """A straight ruling-line piece. Horizontal: ``x0 < x1`` and y runs ``y0 -> y1``; vertical: ``y0 < y1``.

    ``start``/``end`` are its extent along the line, ``pos`` its position across it at the middle,
    ``slope`` the change across per unit along (all derived once: they are used in every comparison).
    """

    x0: float
    y0: float
    x1: float
    y1: float
    horizontal: bool
    thickness: float = 3.0
    start: float = field(init=False, repr=False, compare=False)
    end: float = field(init=False, repr=False, compare=False)
    pos: float = field(init=False, repr=False, compare=False)
    slope: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        a, b = (self.x0, self.x1) if self.horizontal else (self.y0, self.y1)
        p0, p1 = (self.y0, self.y1) if self.horizontal else (self.x0, self.x1)
        object.__setattr__(self, "start", a)
        object.__setattr__(self, "end", b)
        object.__setattr__(self, "pos", (p0 + p1) / 2)
        object.__setattr__(self, "slope", (p1 - p0) / (b - a) if b > a else 0.0)

    @property
    def length(self) -> float:
        return self.end - self.start

    def at(self, t: float) -> float:
        """Position across the line at coordinate ``t`` along it (extrapolated linearly)."""
        return (self.y0 if self.horizontal else self.x0) + (t - self.start) * self.slope

    def to_dict(self) -> dict[str, Any]:
        return {"x0": round(self.x0, 1), "y0": round(self.y0, 1), "x1": round(self.x1, 1), "y1": round(self.y1, 1),
                "horizontal": self.horizontal, "thickness": round(self.thickness, 1)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Segment:
        return Segment(float(data["x0"]), float(data["y0"]), float(data["x1"]), float(data["y1"]),
                       bool(data["horizontal"]), float(data.get("thickness", 3.0)))


@dataclass(frozen=True, slots=True)
class Rulings:
    horizontal: tuple[Segment, ...]
    vertical: tuple[Segment, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"horizontal": [s.to_dict() for s in self.horizontal], "vertical": [s.to_dict() for s in self.vertical]}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Rulings:
        return Rulings(tuple(Segment.from_dict(s) for s in data.get("horizontal", [])),
                       tuple(Segment.from_dict(s) for s in data.get("vertical", [])))


# ---------------------------------------------------------------------------------------------- rulings


def line_masks(ink: np.ndarray, params: LayoutParams) -> tuple[np.ndarray, np.ndarray]:
    """Masks of long horizontal and vertical ink runs (ruling lines) of an ink mask (255 = ink).

    Short breaks along a line (pin holes from faint print or noise) are closed before the long opening.
    """
    bridge = max(2, round(params.px(0.013)))  # pin holes only: wider gaps would join characters into runs
    h_len = max(10, round(params.px(params.min_h_line)))
    v_len = max(10, round(params.px(params.min_v_line)))
    rect = cv2.getStructuringElement
    h = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, rect(cv2.MORPH_RECT, (bridge, 1)))
    h = cv2.morphologyEx(h, cv2.MORPH_OPEN, rect(cv2.MORPH_RECT, (h_len, 1)))
    v = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, rect(cv2.MORPH_RECT, (1, bridge)))
    v = cv2.morphologyEx(v, cv2.MORPH_OPEN, rect(cv2.MORPH_RECT, (1, v_len)))
    return h, v


def _trace(ink: np.ndarray, segments: Iterable[Segment], params: LayoutParams,
           across: np.ndarray | None = None) -> list[Segment]:
    """Grow each segment at both ends along the ink of its line (within a pixel or two of it).

    The opening above only keeps straight runs as long as its kernel; the last stretch of a thin line
    that steps by one pixel (slight slope, perspective) is shorter and would be lost, leaving the line
    short of the border it meets. ``across`` (the mask of the perpendicular rules) stops the walk just
    past the first rule it crosses: beyond a T-junction the ink in line with a rule is text ("完"'s
    stroke under a column border), and following it would rule a merged cell in two.

    The pixels every walk could visit are read in one gather per mask (a page has ~140 walks), and each
    walk then steps through its own stretch of the answers.
    """
    segs = list(segments)
    h, w = ink.shape
    reach = round(params.px(0.3))
    max_gap = max(2, round(params.px(0.015)))
    band = 2
    walks: list[tuple[int, int, int]] = []  # (segment, first position, steps), one per end
    positions: list[np.ndarray] = []
    for k, seg in enumerate(segs):
        limit = w if seg.horizontal else h
        for t0, step in ((round(seg.start), -1), (round(seg.end), 1)):
            steps = max(0, min(reach, limit - 1 - t0 if step > 0 else t0))  # on the page, within reach
            walks.append((k, t0, steps))
            positions.append(t0 + step * np.arange(1, steps + 1))
    if not segs or not any(steps for _, _, steps in walks):
        return segs
    t = np.concatenate(positions)
    owner = np.repeat(np.array([k for k, _, _ in walks]), [steps for _, _, steps in walks])
    horizontal = np.array([seg.horizontal for seg in segs])[owner]
    base = np.array([seg.y0 if seg.horizontal else seg.x0 for seg in segs])[owner]
    start = np.array([seg.start for seg in segs])[owner]
    slope = np.array([seg.slope for seg in segs])[owner]
    c = np.round(base + (t - start) * slope).astype(np.int64)  # as round(seg.at(t))

    def inked(mask: np.ndarray) -> list[bool]:
        """Whether ``mask`` has ink within ``band`` px across the line at each position (the window is cut
        at the page's edge)."""
        across_size = horizontal * h + ~horizontal * w  # the mask's extent across each line
        rows = c[None, :] + np.arange(-band, band + 1)[:, None]
        inside = (rows >= 0) & (rows < across_size)
        rows = np.minimum(np.maximum(rows, 0), across_size - 1)
        ys = np.where(horizontal, rows, t)
        xs = np.where(horizontal, t, rows)
        return list(((mask[ys, xs] > 0) & inside).any(axis=0).tolist())

    ink_at = inked(ink)
    rule_at = inked(across) if across is not None else None
    where = t.tolist()
    ends: list[int] = []
    first = 0
    for _, t0, steps in walks:
        last, gap, crossing = t0, 0, False
        for i in range(first, first + steps):
            if rule_at is not None:
                if crossing and not rule_at[i]:
                    break
                crossing = crossing or rule_at[i]
            if ink_at[i]:
                last, gap = where[i], 0
            else:
                gap += 1
                if gap > max_gap:
                    break
        ends.append(last)
        first += steps
    out = []
    for k, seg in enumerate(segs):
        start_t, end_t = ends[2 * k], ends[2 * k + 1]
        if start_t == round(seg.start) and end_t == round(seg.end):
            out.append(seg)
        elif seg.horizontal:
            out.append(Segment(float(start_t), seg.at(start_t), float(end_t), seg.at(end_t), True, seg.thickness))
        else:
            out.append(Segment(seg.at(start_t), float(start_t), seg.at(end_t), float(end_t), False, seg.thickness))
    return out


def _segments_from_mask(mask: np.ndarray, horizontal: bool, params: LayoutParams) -> list[Segment]:
    """Straight segments of a line mask: rows holding line pixels form bands (a line a little sloped
    covers a few rows), and only those bands are labelled (cheaper than labelling the page). Each end's
    position is the mean of the line pixels in a short window there, so the slope is measured."""
    m = mask if horizontal else np.ascontiguousarray(mask.T)
    max_thick = params.px(params.max_thickness)
    max_double, double_length = params.px(params.max_double), params.px(params.min_double_length)
    out: list[Segment] = []
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(rows) > 1)
    starts = np.concatenate(([rows[0]], rows[breaks + 1]))
    ends = np.concatenate((rows[breaks], [rows[-1]])) + 1
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        band = np.ascontiguousarray(m[a:b])
        n, labels, stats, _ = components(band)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            thickness = area / max(1, w)
            if thickness > max_thick and (thickness > max_double or w < double_length):
                continue
            piece = labels[y:y + h, x:x + w] == i
            end = max(2, min(w // 4, round(params.px(0.1))))
            ys = np.arange(a + y, a + y + h, dtype=float)[:, None]
            left, right = piece[:, :end], piece[:, -end:]
            p_left = float((ys * left).sum() / max(1, left.sum()))
            p_right = float((ys * right).sum() / max(1, right.sum()))
            ta, tb = x + (end - 1) / 2, x + w - 1 - (end - 1) / 2
            slope = (p_right - p_left) / (tb - ta) if tb > ta else 0.0
            s0, s1 = float(x), float(x + w - 1)
            q0, q1 = p_left - slope * (ta - s0), p_right + slope * (s1 - tb)
            out.append(Segment(s0, q0, s1, q1, True, thickness) if horizontal
                       else Segment(q0, s0, q1, s1, False, thickness))
    return out


def merge_collinear(segments: Iterable[Segment], params: LayoutParams) -> list[Segment]:
    """Join pieces of one broken line: same position (within ``touch``), gap along it under ``join_gap``."""
    tol = params.px(params.touch) * 0.5
    gap = params.px(params.join_gap)
    # Pieces of one line sit at about the same position: bucket by position, then merge along the line.
    by_pos = sorted(segments, key=lambda s: s.pos)
    groups: list[list[Segment]] = []
    for seg in by_pos:
        if groups and seg.pos - groups[-1][-1].pos <= 2 * tol:
            groups[-1].append(seg)
        else:
            groups.append([seg])
    merged: list[Segment] = []
    for group in groups:
        run: list[Segment] = []
        for seg in sorted(group, key=lambda s: s.start):
            for k in range(len(run) - 1, -1, -1):
                cur = run[k]
                t = max(seg.start, cur.end)
                if seg.start - cur.end <= gap and abs(cur.at(t) - seg.at(t)) <= tol:
                    run[k] = _join(cur, seg)
                    break
            else:
                run.append(seg)
        merged.extend(run)
    return merged


def _join(a: Segment, b: Segment) -> Segment:
    first = a if a.start <= b.start else b
    end_piece = a if a.end >= b.end else b
    thickness = (a.thickness * a.length + b.thickness * b.length) / max(1e-6, a.length + b.length)
    if a.horizontal:
        return Segment(first.x0, first.y0, end_piece.x1, end_piece.y1, True, thickness)
    return Segment(first.x0, first.y0, end_piece.x1, end_piece.y1, False, thickness)


def flank_shares(ink: np.ndarray, stretches: Sequence[tuple[Segment, float, float]]) -> list[tuple[float, float]]:
    """For each stretch ``(segment, a, b)``: how much ink lies beside ``[a, b]`` of the segment on both sides
    at once: the share of positions with ink 2-6 px off its edges on both sides ("flanked"), and with ink
    right at its edges (1-2 px) on both sides ("touched"). All stretches are read in a few gathers.

    A rule has paper on both sides but for text printed close to it (flanked where two cells' text runs
    up to it, rarely touched: cell padding leaves a gap); a character's stroke has the character's
    other strokes around and across it (measured on rules: flanked 0-0.34, touched 0-0.09; strokes
    taken for rules: flanked 0.14-0.93, touched 0-0.87).
    """
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(stretches)
    for horizontal in (True, False):
        picked = [i for i, (seg, _, _) in enumerate(stretches) if seg.horizontal == horizontal]
        along, across = (ink.shape[1], ink.shape[0]) if horizontal else (ink.shape[0], ink.shape[1])
        spans = []
        for i in picked:
            _, a, b = stretches[i]
            lo, hi = max(0, math.floor(a)), min(math.ceil(b), along)
            if hi - lo >= 1:
                spans.append((i, lo, hi))
        if not spans:
            continue
        lengths = np.array([hi - lo for _, lo, hi in spans])
        firsts = np.cumsum(lengths) - lengths
        per = np.repeat(np.arange(len(spans)), lengths)  # the stretch each position belongs to
        segs = [stretches[i][0] for i, _, _ in spans]
        t = np.arange(int(lengths.sum())) - firsts[per] + np.array([lo for _, lo, _ in spans])[per]
        base = np.array([sg.y0 if horizontal else sg.x0 for sg in segs])[per]
        start = np.array([sg.start for sg in segs])[per]
        slope = np.array([sg.slope for sg in segs])[per]
        half = np.array([math.ceil(sg.thickness / 2) for sg in segs])[per]
        c = np.round(base + (t - start) * slope).astype(np.int64)
        # One gather for all 12 probe lines (1-6 px off each edge) of every position.
        off = half[None, :] + np.arange(1, 7)[:, None]
        q = np.clip(np.concatenate([c - off, c + off]), 0, across - 1)
        probes = (ink[q, t] if horizontal else ink[t, q]) > 0  # rows 0-5: one side, k=1..6; 6-11: the other
        flanked = probes[1:6].any(axis=0) & probes[7:12].any(axis=0)
        touched = probes[0:2].any(axis=0) & probes[6:8].any(axis=0)
        n_flanked = np.add.reduceat(flanked.astype(np.int64), firsts)
        n_touched = np.add.reduceat(touched.astype(np.int64), firsts)
        for k, (i, _, _) in enumerate(spans):
            out[i] = (float(n_flanked[k] / lengths[k]), float(n_touched[k] / lengths[k]))
    return out


def _is_text_like(flanked: float, touched: float) -> bool:
    return touched >= 0.1 or flanked >= 0.45


def _cut(seg: Segment, start: float, end: float) -> Segment:
    if seg.horizontal:
        return Segment(start, seg.at(start), end, seg.at(end), True, seg.thickness)
    return Segment(seg.at(start), start, seg.at(end), end, False, seg.thickness)


# A segment whose stretches between crossing rules are text-like over this share of its length is a
# run of character strokes; longer segments than TEXT_RUN_MAX are rules whatever text crowds them.
TEXT_RUN_SHARE = 0.5
TEXT_RUN_MAX = 2.0


def prune_text_runs(ink: np.ndarray, segments: Sequence[Segment], others: Sequence[Segment],
                    params: LayoutParams) -> list[Segment]:
    """Rules without the ink of text that was taken for them.

    Dense tables print text against their rules, and a character's strokes then join a rule or each
    other into runs the opening keeps: the vertical strokes of one column of characters, row above
    row, through the rules between them ("G60" over "发表" over "举办" splitting the 三级指标 column), a
    bold title's strokes. Each segment is cut at the rules it crosses, and a stretch between two
    crossings is text-like when ink flanks it as it flanks a stroke (:func:`flank_shares`); a segment
    that is mostly text-like goes. And text printed in line with a rule (the vertical stroke of "情"
    under a column border) joins the rule's ink and would make it reach into the next row, splitting
    a merged cell there: the end of a rule that runs on past the last rule it crosses, stops short of
    any other, and is text-like (or overshoots the crossing by less than 0.12 in) is cut off: a rule
    ends on a crossing rule.
    """
    tol = params.px(params.touch)
    tight = max(2.0, params.px(0.02))
    overshoot = params.px(0.12)  # blur, ink bleed, the upper table's rule run into the lower table's row
    longest = params.px(TEXT_RUN_MAX)
    plans = []
    for seg in segments:
        cross: list[float] = []
        free_start = free_end = True
        for o in others:
            t = o.at(seg.pos)  # where the other rule is, along this one
            if not o.start - tol <= seg.at(t) <= o.end + tol:
                continue
            if abs(t - seg.start) <= tight:
                free_start = False
            if abs(t - seg.end) <= tight:
                free_end = False
            if seg.start + tight < t < seg.end - tight:
                cross.append(t)
        cross.sort()
        stops = [seg.start, *cross, seg.end]
        pieces = [(a, b) for a, b in itertools.pairwise(stops) if b - a > 2 * tight]
        plans.append((seg, cross, free_start, free_end, pieces))
    shares = iter(flank_shares(ink, [(seg, a + tight, b - tight) for seg, _, _, _, pieces in plans
                                          for a, b in pieces]))
    out = []
    for seg, cross, free_start, free_end, pieces in plans:
        text = [_is_text_like(*next(shares)) for _ in pieces]
        if seg.length < longest and pieces:
            share = sum(b - a for (a, b), t in zip(pieces, text, strict=True) if t) / max(1.0, seg.length)
            if share >= TEXT_RUN_SHARE:
                continue
        start, end = seg.start, seg.end
        head_text = bool(text) and pieces[0][0] == seg.start and text[0]
        tail_text = bool(text) and pieces[-1][1] == seg.end and text[-1]
        if cross and free_start and (cross[0] - seg.start < overshoot or head_text):
            start = cross[0]
        if cross and free_end and (seg.end - cross[-1] < overshoot or tail_text):
            end = cross[-1]
        out.append(seg if (start, end) == (seg.start, seg.end) or end <= start else _cut(seg, start, end))
    return out


def detect_rulings(ink: np.ndarray, params: LayoutParams) -> tuple[Rulings, np.ndarray]:
    """Ruling-line segments of a prepared page, and the mask of their pixels (to take out of the text)."""
    h_mask, v_mask = line_masks(ink, params)
    horizontal = merge_collinear(_segments_from_mask(h_mask, True, params), params)
    vertical = merge_collinear(_segments_from_mask(v_mask, False, params), params)
    horizontal = merge_collinear(_trace(ink, horizontal, params, v_mask), params)
    vertical = merge_collinear(_trace(ink, vertical, params, h_mask), params)
    horizontal, vertical = (prune_text_runs(ink, horizontal, vertical, params),
                            prune_text_runs(ink, vertical, horizontal, params))
    return Rulings(tuple(horizontal), tuple(vertical)), cv2.bitwise_or(h_mask, v_mask)


# ---------------------------------------------------------------------------------------------- grids


@dataclass(frozen=True, slots=True)
class GridLine:
    """One row or column boundary of a table: the segments that print it (possibly with gaps).

    Build with :meth:`of`; ``pos`` (length-weighted position across the line), ``start`` and ``end``
    (extent along it) are computed once.
    """

    segments: tuple[Segment, ...]
    horizontal: bool
    pos: float
    start: float
    end: float

    @staticmethod
    def of(segments: Iterable[Segment], horizontal: bool) -> GridLine:
        segs = tuple(segments)
        total = sum(s.length for s in segs)
        pos = (sum(s.pos * s.length for s in segs) / total) if total > 0 else float(np.mean([s.pos for s in segs]))
        return GridLine(segs, horizontal, pos, min(s.start for s in segs), max(s.end for s in segs))

    def at(self, t: float) -> float:
        """Position across the line at ``t`` along it: from the segment there, else the nearest one."""
        # Grids ask this for every boundary piece: Segment.at and min / max are spelled out (the same
        # arithmetic, ties included), which costs a third of the calls.
        segments = self.segments
        if len(segments) == 1:  # most lines are one segment: nothing to choose
            best = segments[0]
        else:
            found: Segment | None = None
            best_d = math.inf
            for s in segments:
                if s.start <= t <= s.end:
                    d = 0.0
                else:
                    d_start, d_end = abs(t - s.start), abs(t - s.end)
                    d = d_end if d_end < d_start else d_start
                if d < best_d:
                    found, best_d = s, d
            assert found is not None
            best = found
        start, end = best.start, best.end
        u = start if start > t else t  # min(max(t, start), end)
        if end < u:
            u = end
        return (best.y0 if best.horizontal else best.x0) + (u - start) * best.slope

    def coverage(self, a: float, b: float) -> float:
        """Share of the interval ``[a, b]`` along the line that is actually printed."""
        if b <= a:
            return 1.0
        if len(self.segments) == 1:  # the general case below, for one segment
            s = self.segments[0]
            if s.end > a and s.start < b:
                s0 = s.start if s.start > a else a
                s1 = s.end if s.end < b else b
                if s1 > s0:
                    return (s1 - s0) / (b - a)
            return 0.0
        spans = sorted((max(a, s.start), min(b, s.end)) for s in self.segments if s.end > a and s.start < b)
        covered, cursor = 0.0, a
        for s0, s1 in spans:
            s0 = max(s0, cursor)
            if s1 > s0:
                covered += s1 - s0
                cursor = s1
        return covered / (b - a)


@dataclass(frozen=True, slots=True)
class GridCell:
    """A cell of one page table: grid position and spans (merged cells), box in prepared-page pixels."""

    row: int
    col: int
    row_span: int
    col_span: int
    bbox: BBox

    @property
    def last_row(self) -> int:
        return self.row + self.row_span - 1

    @property
    def last_col(self) -> int:
        return self.col + self.col_span - 1


@dataclass(frozen=True, slots=True)
class PageTable:
    """One ruled table on a page: its grid lines and cells (every grid position covered exactly once)."""

    rows: tuple[GridLine, ...]
    cols: tuple[GridLine, ...]
    cells: tuple[GridCell, ...]

    @property
    def n_rows(self) -> int:
        return len(self.rows) - 1

    @property
    def n_cols(self) -> int:
        return len(self.cols) - 1

    @property
    def bbox(self) -> BBox:
        box = BBox.enclosing(c.bbox for c in self.cells)
        assert box is not None
        return box

    def row_top(self, r: int) -> float:
        return self.rows[r].pos

    def col_fractions(self) -> tuple[float, ...]:
        """Column line positions as fractions of the table width (0 = outer left border, 1 = right)."""
        y_mid = (self.rows[0].pos + self.rows[-1].pos) / 2
        xs = [c.at(y_mid) for c in self.cols]
        left, right = xs[0], xs[-1]
        width = max(1e-6, right - left)
        return tuple(float((x - left) / width) for x in xs)


def _cluster_lines(segments: Sequence[Segment], tol: float) -> list[list[Segment]]:
    groups: list[list[Segment]] = []
    for seg in sorted(segments, key=lambda s: s.pos):
        if groups:
            last = groups[-1]
            # most groups hold one segment: its position is the mean (np.mean's own sum for more)
            mean = last[0].pos if len(last) == 1 else np.mean([s.pos for s in last])
            if seg.pos - mean <= tol:
                last.append(seg)
                continue
        groups.append([seg])
    return groups


def _collapse_thin(lines: list[GridLine], min_gap: float) -> list[GridLine]:
    """Two grid lines closer than ``min_gap`` that run side by side (a double border) become one.

    Lines that are close but cover different stretches stay apart: the column borders of two tables
    printed back to back (the project block above, the indicator block below) may differ by a few
    millimetres, and merging them would take the upper table's border away.
    """
    out: list[GridLine] = []
    for line in lines:
        if out and line.pos - out[-1].pos < min_gap and _side_by_side(out[-1], line):
            out[-1] = GridLine.of(out[-1].segments + line.segments, line.horizontal)
            continue
        out.append(line)
    return out


def _side_by_side(a: GridLine, b: GridLine, of_longer: bool = False) -> bool:
    """Whether two parallel lines share a good part of their extent (a double rule does; the border
    of one block and a nearby border of the block below or beside it do not). ``of_longer``: a good
    part of the longer one (a short piece of border beside a long rule is not a double rule)."""
    shared = min(a.end, b.end) - max(a.start, b.start)
    lengths = (a.end - a.start, b.end - b.start)
    return shared >= (0.5 * max(lengths) if of_longer else 0.3 * min(lengths))


def group_tables(rulings: Rulings, params: LayoutParams) -> list[tuple[list[Segment], list[Segment]]]:
    """Segments that touch each other, grouped into tables (at least 2 horizontal and 2 vertical lines)."""
    hs, vs = list(rulings.horizontal), list(rulings.vertical)
    n = len(hs) + len(vs)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tol = params.px(params.touch)
    # Every pair that touches (each ends at the other within tol); Segment.at spelled out on plain floats.
    h_lines = [(h.pos, h.y0, h.start, h.slope, h.x0 - tol, h.x1 + tol) for h in hs]
    v_lines = [(j, v.pos, v.x0, v.start, v.slope, v.y0 - tol, v.y1 + tol) for j, v in enumerate(vs, len(hs))]
    for i, (h_pos, h_base, h_start, h_slope, h_lo, h_hi) in enumerate(h_lines):
        for j, v_pos, v_base, v_start, v_slope, v_lo, v_hi in v_lines:
            if (h_lo <= v_base + (h_pos - v_start) * v_slope <= h_hi
                    and v_lo <= h_base + (v_pos - h_start) * h_slope <= v_hi):
                a, b = find(i), find(j)
                if a != b:
                    parent[a] = b
    groups: dict[int, tuple[list[Segment], list[Segment]]] = {}
    for i, h in enumerate(hs):
        groups.setdefault(find(i), ([], []))[0].append(h)
    for j, v in enumerate(vs):
        groups.setdefault(find(len(hs) + j), ([], []))[1].append(v)
    tables = []
    for hs_g, vs_g in groups.values():
        hs_g, vs_g = _supported(hs_g, vs_g, tol)
        if len(hs_g) >= 2 and len(vs_g) >= 2:
            tables.append((hs_g, vs_g))
    return sorted(tables, key=lambda g: min(s.pos for s in g[0]))


def _supported(hs: list[Segment], vs: list[Segment], tol: float) -> tuple[list[Segment], list[Segment]]:
    """Drop segments that are not table rules: a rule (all its collinear pieces together, when it is
    broken) ends on crossing rules at both ends, or is long. A run of character strokes long enough to
    pass the opening may touch a cell border at one end, never at both.

    A rule may end a little short of the rule it meets (``tol``) or run on past it (blur, ink bleed,
    a piece of the next table's rule): the crossing rule may lie well inside either end (up to 30 % of
    its length), as long as the two ends meet two different rules.
    """

    def crossings(lo: float, hi: float, p: float, others: list[Segment]) -> list[float]:
        found = []
        for o in others:
            q = o.at(p)
            if lo <= q <= hi and o.start - tol <= p <= o.end + tol:
                found.append(q)
        return found

    def keep(segs: list[Segment], others: list[Segment]) -> list[Segment]:
        if not segs:
            return []
        extent = max(s.end for s in segs) - min(s.start for s in segs)
        out: list[Segment] = []
        for line in _cluster_lines(segs, tol):
            a = min(line, key=lambda s: s.start)
            b = max(line, key=lambda s: s.end)
            length = b.end - a.start
            if length >= 0.5 * extent:
                out.extend(line)
                continue
            overrun = 0.3 * length  # text never crosses a rule: a segment crossing two rules is one
            first = crossings(a.start - tol, a.start + overrun, a.at(a.start), others)
            last = crossings(b.end - overrun, b.end + tol, b.at(b.end), others)
            if first and last and max(last) - min(first) > 2 * tol:
                out.extend(line)
        return out

    for _ in range(2):  # once more: dropping text runs can leave others unsupported
        hs, vs = keep(hs, vs), keep(vs, hs)
    return hs, vs


def build_grid(h_segments: Sequence[Segment], v_segments: Sequence[Segment], params: LayoutParams) -> PageTable | None:
    """The cell grid of one table, with merged cells where a grid boundary is not ruled."""
    tol = params.px(params.cluster)
    min_gap = params.px(params.min_cell)
    rows = _collapse_thin([GridLine.of(g, True) for g in _cluster_lines(h_segments, tol)], min_gap)
    cols = _collapse_thin([GridLine.of(g, False) for g in _cluster_lines(v_segments, tol)], min_gap)
    if len(rows) < 2 or len(cols) < 2:
        return None
    n_r, n_c = len(rows) - 1, len(cols) - 1
    # Boundary geometry at each grid position (lines may be slightly sloped or bent).
    y_mid_row = [(rows[r].pos + rows[r + 1].pos) / 2 for r in range(n_r)]
    x_mid_col = [(cols[c].pos + cols[c + 1].pos) / 2 for c in range(n_c)]
    inset = params.px(params.touch) * 0.5  # skip the crossing lines' own thickness at interval ends
    need = params.coverage

    def ruled(lines: Sequence[GridLine], crossing: Sequence[GridLine], mids: Sequence[float]) -> list[list[bool]]:
        """Whether each line is printed between each pair of neighbouring crossing lines (at their midpoint)."""
        flags = []
        for line in lines:
            row = []
            for k, mid in enumerate(mids):
                at = line.at(mid)
                row.append(line.coverage(crossing[k].at(at) + inset, crossing[k + 1].at(at) - inset) >= need)
            flags.append(row)
        return flags

    # Whether each boundary piece is ruled: v_ruled[c_line][r] (column line beside row r), h_ruled[r_line][c].
    v_ruled = ruled(cols, rows, y_mid_row)
    h_ruled = ruled(rows, cols, x_mid_col)

    outside = n_r * n_c
    parent = list(range(outside + 1))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        if ra == outside:  # "outside" stays the root of whatever joins it
            ra, rb = rb, ra
        parent[ra] = rb

    for r in range(n_r):
        for c in range(n_c):
            k = r * n_c + c
            if c + 1 < n_c and not v_ruled[c + 1][r]:
                union(k, k + 1)
            if r + 1 < n_r and not h_ruled[r + 1][c]:
                union(k, k + n_c)
            if (c == 0 and not v_ruled[0][r]) or (c == n_c - 1 and not v_ruled[n_c][r]):
                union(k, outside)
            if (r == 0 and not h_ruled[0][c]) or (r == n_r - 1 and not h_ruled[n_r][c]):
                union(k, outside)

    # Make every group a rectangle (a missing stub of line must not make an L-shaped cell). Only groups
    # inside the table are joined here, so the root of "outside" stays the same.
    root_out = find(outside)
    changed = True
    while changed:
        changed = False
        # per group: its bounding box (r0, c0, r1, c1), the column of its first cell in reading order, its size
        spans: dict[int, list[int]] = {}
        for r in range(n_r):
            for c in range(n_c):
                k = r * n_c + c
                g = parent[k]
                if parent[g] != g:  # find(k) when k is no root's child (find changes nothing then)
                    g = find(k)
                if g == root_out:
                    continue
                box = spans.get(g)
                if box is None:
                    spans[g] = [r, c, r, c, c, 1]
                    continue
                if c < box[1]:
                    box[1] = c
                box[2] = r  # reading order: r never decreases
                if c > box[3]:
                    box[3] = c
                box[5] += 1
        for g, (r0, c0, r1, c1, _, size) in spans.items():
            if size == (r1 - r0 + 1) * (c1 - c0 + 1):
                continue  # the group fills its box: nothing else is inside
            root = find(g)
            for r in range(r0, r1 + 1):
                for c in range(c0, c1 + 1):
                    other = find(r * n_c + c)
                    if other != root and other != root_out:
                        union(g, other)
                        root = find(g)
                        changed = True

    cells: list[GridCell] = []
    # The last pass joined nothing: its groups are the cells, placed at their first row and first cell's column.
    for r0, _, r1, c1, c0, _ in spans.values():
        y_mid = (rows[r0].pos + rows[r1 + 1].pos) / 2
        x_mid = (cols[c0].pos + cols[c1 + 1].pos) / 2
        bbox = BBox(cols[c0].at(y_mid), rows[r0].at(x_mid), cols[c1 + 1].at(y_mid), rows[r1 + 1].at(x_mid))
        cells.append(GridCell(r0, c0, r1 - r0 + 1, c1 - c0 + 1, bbox))
    if not cells:
        return None
    cells.sort(key=lambda c: (c.row, c.col))
    return PageTable(tuple(rows), tuple(cols), tuple(cells))


def _clip(v: Segment, top: float, bottom: float) -> Segment | None:
    y0, y1 = max(v.y0, top), min(v.y1, bottom)
    if y1 - y0 <= 0:
        return None
    return Segment(v.at(y0), y0, v.at(y1), y1, False, v.thickness)


def split_stacked(h_segments: Sequence[Segment], v_segments: Sequence[Segment], params: LayoutParams,
                  ) -> list[tuple[list[Segment], list[Segment]]]:
    """Split a group of touching lines where two row lines run closer than a row can be (a double rule).

    That is where one table ends and the next begins (the project block and the indicator block are
    often two tables printed back to back); each keeps its own outer borders, so its columns normalise
    correctly even when the two differ in width.
    """
    tol = params.px(params.cluster)
    lines = [GridLine.of(g, True) for g in _cluster_lines(h_segments, tol)]
    min_gap = params.px(params.min_cell)
    cuts = [i for i in range(len(lines) - 1)
            if lines[i + 1].pos - lines[i].pos < min_gap and _side_by_side(lines[i], lines[i + 1], of_longer=True)]
    if not cuts:
        return [(list(h_segments), list(v_segments))]
    bounds = []
    start = 0
    for i in [*cuts, len(lines) - 1]:
        bounds.append((start, i))
        start = i + 1
    parts: list[tuple[list[Segment], list[Segment]]] = []
    for a, b in bounds:
        top, bottom = lines[a].pos, lines[b].pos
        hs = [seg for line in lines[a:b + 1] for seg in line.segments]
        reach = params.px(params.touch)
        vs = [c for v in v_segments if (c := _clip(v, top - reach, bottom + reach)) is not None
              and c.length >= 0.5 * params.px(params.min_v_line)]
        if b > a and vs:
            parts.append((hs, vs))
        elif parts:  # a lone line: the second rule of a double border, keep it with the part above
            parts[-1][0].extend(hs)
    return parts or [(list(h_segments), list(v_segments))]


def find_tables(rulings: Rulings, params: LayoutParams) -> list[PageTable]:
    """Every ruled table on the page, top to bottom."""
    tables = []
    for hs, vs in group_tables(rulings, params):
        for part_h, part_v in split_stacked(hs, vs, params):
            table = build_grid(part_h, part_v, params)
            if table is not None and table.cells:
                tables.append(table)
    return tables


# ---------------------------------------------------------------------------------------------- text lines


def text_mask(ink: np.ndarray, lines: np.ndarray, params: LayoutParams | None = None) -> np.ndarray:
    """Ink without ruling lines (widened a little to take their edges) and without isolated specks."""
    out = cv2.subtract(ink, cv2.dilate(lines, np.ones((5, 5), np.uint8)))
    return remove_specks(out, params) if params is not None else out


def text_size(tmask: np.ndarray, tables: Sequence[PageTable], params: LayoutParams) -> float | None:
    """The page's body text height in inches, from the heights of the ink bands in its cells.

    Forms print in 8 to 12 pt; line finding (which bands are one line, where a tall band splits, what
    is a speck) needs the size actually used. Bands are rows of ink inside a cell; most are one line
    of text, some are digits (shorter) or two touching lines (taller), so the upper quartile of the
    plausible heights is taken. None when the page has too few cells with text to tell.
    """
    m = params.px(params.cell_margin)
    lo, hi = params.px(0.05), params.px(0.3)
    h, w = tmask.shape
    heights: list[int] = []
    for t in tables:
        for c in t.cells:
            b = c.bbox
            y0, y1 = max(0, math.ceil(b.y0 + m)), min(h, math.floor(b.y1 - m))
            x0, x1 = max(0, math.ceil(b.x0 + m)), min(w, math.floor(b.x1 - m))
            if y1 - y0 < 2 or x1 - x0 < 2:
                continue
            heights.extend(bb - a for a, bb in _runs(_text_rows(tmask[y0:y1, x0:x1]), 1) if lo <= bb - a <= hi)
    if len(heights) < 15:
        return None
    size = float(np.percentile(heights, 75)) / params.dpi
    return float(np.clip(size, 0.6 * params.em, 1.4 * params.em))


def drop_small_blobs(mask: np.ndarray, params: LayoutParams, size: float = 0.045) -> np.ndarray:
    """The mask without blobs smaller than ``size`` inches both ways, wherever they are.

    For speckled pages only (dithered binarisation, dense pepper noise): there the noise clusters
    beside text too, so :func:`remove_specks` keeps much of it. A character's strokes are larger
    (a "1" is as tall as the line); a decimal point lost here is still in its line's crop, which is
    cut from the page image.
    """
    n, labels, stats, _ = components(mask)
    if n <= 1:
        return mask
    limit = params.px(size)
    small = (stats[:, cv2.CC_STAT_WIDTH] < limit) & (stats[:, cv2.CC_STAT_HEIGHT] < limit)
    small[0] = False
    if not small.any():
        return mask
    rows, cols, _ = _blob_pixels(labels, stats, small)
    return _without(mask, rows, cols)


def _blob_pixels(labels: np.ndarray, stats: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, ...]:
    """(rows, columns, blob) of every pixel of the blobs set in ``which``, found inside their boxes.

    For small blobs: their boxes hold a few hundred thousand pixels at most, where a lookup of every
    label costs two full-page temporaries (a 16-bit label indexes only after a cast to 64 bits).
    """
    ids = np.flatnonzero(which)
    x, y = stats[ids, cv2.CC_STAT_LEFT], stats[ids, cv2.CC_STAT_TOP]
    w, h = stats[ids, cv2.CC_STAT_WIDTH], stats[ids, cv2.CC_STAT_HEIGHT]
    areas = (w * h).astype(np.intp)
    owner = np.repeat(np.arange(ids.size), areas)  # the box each box pixel is in
    within = np.arange(owner.size) - np.repeat(np.cumsum(areas) - areas, areas)  # its index in that box
    width = w[owner]
    cols, rows = x[owner] + within % width, y[owner] + within // width
    mine = labels[rows, cols] == ids[owner]  # a box may hold pixels of other blobs
    return rows[mine], cols[mine], ids[owner[mine]]


def _without(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A copy of the mask with the pixels at ``rows``, ``cols`` cleared (blobs from :func:`_blob_pixels`)."""
    out = mask.copy()
    out[rows, cols] = 0
    return out


def remove_specks(mask: np.ndarray, params: LayoutParams) -> np.ndarray:
    """Drop blobs smaller than a punctuation mark that sit off every text line (scanner dust, speckle).

    A full stop, comma, colon or decimal point is as small as a speck, but it always sits on a line of
    text, beside a character: small blobs are kept when a larger blob lies within ~0.8 em to the side
    and ~0.25 em above or below; the others go.
    """
    n, labels, stats, centroids = components(mask)
    if n <= 1:
        return mask
    em = params.px(params.em)
    small = (stats[:, cv2.CC_STAT_WIDTH] <= 0.3 * em) & (stats[:, cv2.CC_STAT_HEIGHT] <= 0.3 * em)
    small[0] = False
    if not small.any():
        return mask
    rows, cols, blob = _blob_pixels(labels, stats, small)
    big = _without(mask, rows, cols)
    kx, ky = 2 * max(2, round(0.8 * em)) + 1, 2 * max(1, round(0.25 * em)) + 1
    near = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_RECT, (kx, ky)))
    cx = np.clip(np.round(centroids[:, 0]).astype(int), 0, mask.shape[1] - 1)
    cy = np.clip(np.round(centroids[:, 1]).astype(int), 0, mask.shape[0] - 1)
    # Salt noise (a pixel or two) goes wherever it is: no punctuation mark is that small.
    tiny = stats[:, cv2.CC_STAT_AREA] <= max(2, round((0.08 * em) ** 2))
    drop = small & ((near[cy, cx] == 0) | tiny)
    if not drop.any():
        return mask
    dropped = drop[blob]
    return _without(mask, rows[dropped], cols[dropped])


def _runs(values: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """Index ranges [a, b) where ``values`` is true, runs separated by fewer than ``max_gap`` falses merged."""
    idx = np.flatnonzero(values)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _text_rows(mask: np.ndarray) -> np.ndarray:
    """Rows of a region that hold text: rows with only a trace of ink (a speck, the stroke where two
    lines touch after blur) separate lines."""
    profile = np.count_nonzero(mask, axis=1)
    return np.asarray(profile > 0.04 * float(profile.max(initial=0)))


def _bands(mask: np.ndarray, params: LayoutParams) -> list[tuple[int, int]]:
    """Text-line bands (row ranges) of a region's text mask."""
    em = params.px(params.em)
    bands = _runs(_text_rows(mask), 1)
    # A short band right next to another (the strokes of 二/三, a dash, a quote mark) belongs to it.
    merged: list[tuple[int, int]] = []
    for a, b in bands:
        if merged:
            pa, pb = merged[-1]
            small = (b - a) < 0.5 * em or (pb - pa) < 0.5 * em
            if small and a - pb < 0.35 * em and b - pa <= 1.3 * em:
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return merged


def _split_tall(mask: np.ndarray, a: int, b: int, em: float) -> list[tuple[int, int]]:
    """A band taller than one line (lines touching after blur) split at its emptiest rows.

    n lines of height ~em sit at a pitch of ~1.2-1.3 em when they touch; each cut is taken at the
    emptiest row near where it is expected, and only where that row really is a valley (a tall single
    line, "（" or a speck above digits, has none).
    """
    height = b - a
    n = round((height - em) / (1.25 * em)) + 1
    if height < 1.6 * em or n < 2:
        return [(a, b)]
    profile = np.count_nonzero(mask[a:b], axis=1)
    typical = float(np.median(profile[profile > 0])) if profile.any() else 0.0
    cuts: list[int] = []
    for k in range(1, n):
        centre = round(k * height / n)
        lo, hi = max(1, centre - round(0.4 * em)), min(height - 1, centre + round(0.4 * em))
        if hi <= lo:
            continue
        cut = lo + int(np.argmin(profile[lo:hi]))
        if profile[cut] <= 0.4 * typical and (not cuts or cut - cuts[-1] >= 0.6 * em):
            cuts.append(cut)
    edges = [0, *cuts, height]
    return [(a + edges[i], a + edges[i + 1]) for i in range(len(edges) - 1) if edges[i + 1] > edges[i]]


def _segments_in_band(mask: np.ndarray, a: int, b: int, max_gap: float, params: LayoutParams,
                      ) -> list[tuple[int, int, int, int]]:
    """Pieces of one text line separated by wide gaps, as (x0, y0, x1, y1) ink boxes; specks dropped."""
    band = mask[a:b]
    em = params.px(params.em)
    out = []
    for x0, x1 in _runs(np.asarray(band.any(axis=0)), max(1, round(max_gap))):
        piece = band[:, x0:x1]
        ys = np.flatnonzero(piece.any(axis=1))
        y0, y1 = a + int(ys[0]), a + int(ys[-1]) + 1
        w, h = x1 - x0, y1 - y0
        if w < 0.45 * em and h < 0.45 * em and not (w >= 0.3 * em and h <= 0.4 * w):
            # Smaller than any character (a "1" or "0" is 0.7 em tall) and not a dash: dust that
            # sits alone, which a recogniser reads as "i", "1" or "世".
            continue
        if h < 0.12 * em and w > 4 * em:
            continue  # a stray rule (page edge, underline), not text
        out.append((x0, y0, x1, y1))
    return out


def cell_text_lines(tmask: np.ndarray, box: BBox, params: LayoutParams) -> list[BBox]:
    """Boxes of the text lines inside a cell (top to bottom), from the text mask (no ruling lines)."""
    m = params.px(params.cell_margin)
    h, w = tmask.shape
    x0, y0 = max(0, math.ceil(box.x0 + m)), max(0, math.ceil(box.y0 + m))
    x1, y1 = min(w, math.floor(box.x1 - m)), min(h, math.floor(box.y1 - m))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return []
    return _lines_in_region(tmask[y0:y1, x0:x0 + (x1 - x0)], x0, y0, params, gap_factor=1.2)


def _lines_in_region(region: np.ndarray, ox: int, oy: int, params: LayoutParams, gap_factor: float,
                     min_height: float = 0.0) -> list[BBox]:
    em = params.px(params.em)
    out: list[BBox] = []
    for a, b in _bands(region, params):
        for sa, sb in _split_tall(region, a, b, em):
            gap = gap_factor * max(sb - sa, 0.6 * em)
            for x0, y0, x1, y1 in _segments_in_band(region, sa, sb, gap, params):
                if y1 - y0 >= min_height * em:
                    out.append(BBox(ox + x0, oy + y0, ox + x1, oy + y1))
    return out


def free_text_lines(tmask: np.ndarray, tables: Sequence[PageTable], params: LayoutParams) -> list[BBox]:
    """Text lines outside every table (title, year line, notes, page numbers), top to bottom."""
    masked = tmask.copy()
    pad = params.px(params.touch)
    h, w = masked.shape
    for t in tables:
        b = t.bbox.expand(pad)
        masked[max(0, int(b.y0)):min(h, int(b.y1) + 1), max(0, int(b.x0)):min(w, int(b.x1) + 1)] = 0
    # A lone dash or dot outside a table is a mark (rule remnant, dust), not a line of text.
    return _lines_in_region(masked, 0, 0, params, gap_factor=2.5, min_height=0.35)


def is_dash(line: BBox, params: LayoutParams, tmask: np.ndarray | None = None) -> bool:
    """A text line that is only a short thin solid horizontal bar (a dash, as forms print for "not
    applicable"). With the text mask, the bar must also be one solid stroke (not "=" or "..")."""
    em = params.px(params.em)
    if not (line.height <= 0.3 * em and 0.35 * em <= line.width <= 2.6 * em):
        return False
    if tmask is None:
        return True
    piece = np.ascontiguousarray(tmask[int(line.y0):math.ceil(line.y1), int(line.x0):math.ceil(line.x1)])
    if piece.size == 0:
        return False
    n, _, stats, _ = components(piece)
    if n <= 1:
        return False
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    w, h, area = (int(stats[k, i]) for i in (cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT, cv2.CC_STAT_AREA))
    rest = int(stats[1:, cv2.CC_STAT_AREA].sum()) - area  # specks beside the bar may stay
    return w >= 0.35 * em and h <= 0.3 * em and w >= 3 * h and area >= 0.5 * w * h and rest <= 0.3 * area


def line_crop_box(line: BBox, limit: BBox | None, params: LayoutParams, shape: tuple[int, ...]) -> BBox:
    """The box to cut for recognition: the ink box with a margin like a detector's, kept inside ``limit``."""
    em = params.px(params.em)
    # At least a full line's height around the ink: a lone dash or a row of dots is then read in the
    # proportions the recogniser was trained on (a 4 px high crop of "—" reads as "_").
    height = max(line.height, 0.75 * em)
    pad_y = max(0.15 * em, 0.2 * height)
    pad_x = max(0.2 * em, 0.3 * height, 0.45 * em if params.faint else 0.0)
    cy = line.cy
    box = BBox(line.x0 - pad_x, cy - height / 2 - pad_y, line.x1 + pad_x, cy + height / 2 + pad_y)
    if limit is not None:
        box = BBox(max(box.x0, limit.x0), max(box.y0, limit.y0), min(box.x1, limit.x1), min(box.y1, limit.y1))
    return BBox(max(0.0, box.x0), max(0.0, box.y0), min(float(shape[1]), box.x1), min(float(shape[0]), box.y1))


def cell_text_box(cell: GridCell, params: LayoutParams) -> BBox:
    m = params.px(params.cell_margin)
    return BBox(cell.bbox.x0 + m * 0.5, cell.bbox.y0 + m * 0.5, cell.bbox.x1 - m * 0.5, cell.bbox.y1 - m * 0.5)


# ---------------------------------------------------------------------------------------------- words


def _char_weight(ch: str) -> float:
    return 1.0 if ord(ch) > 0x2E7F or ch in "“”‘’" else 0.55


def split_word(word: Word, cuts: Sequence[float]) -> list[Word]:
    """Split a word at x positions ``cuts`` (cell borders), estimating where each character sits.

    CJK characters are one em wide, Latin letters and digits about half; the split keeps every
    character on the side of the cut its estimated centre is on.
    """
    text = word.text
    inner = sorted(c for c in cuts if word.bbox.x0 < c < word.bbox.x1)
    if not inner or not text:
        return [word]
    weights = [_char_weight(ch) for ch in text]
    total = sum(weights) or 1.0
    scale = word.bbox.width / total
    pieces: list[list[tuple[str, float, float]]] = [[] for _ in range(len(inner) + 1)]
    x = word.bbox.x0
    for ch, wgt in zip(text, weights, strict=True):
        left, right = x, x + wgt * scale
        centre = (left + right) / 2
        slot = sum(1 for c in inner if centre > c)
        pieces[slot].append((ch, left, right))
        x = right
    out = []
    for piece in pieces:
        content = "".join(p[0] for p in piece).strip()
        if not content:
            continue
        box = BBox(piece[0][1], word.bbox.y0, piece[-1][2], word.bbox.y1)
        out.append(Word(content, box, word.confidence))
    return out


@dataclass(frozen=True, slots=True)
class Assignment:
    """Words per cell (keyed by ``(table index, cell index)``) and the words outside every table."""

    cells: dict[tuple[int, int], list[Word]] = field(default_factory=dict)
    free: list[Word] = field(default_factory=list)


def _locate(box: BBox, tables: Sequence[PageTable]) -> tuple[int, int] | None:
    return _locate_in(box, _cell_boxes(tables))


_CellBox = tuple[int, int, float, float, float, float]  # table index, cell index, x0, y0, x1, y1


def _cell_boxes(tables: Sequence[PageTable]) -> list[_CellBox]:
    return [(ti, ci, c.bbox.x0, c.bbox.y0, c.bbox.x1, c.bbox.y1) for ti, t in enumerate(tables)
            for ci, c in enumerate(t.cells)]


def _locate_in(box: BBox, cells: Sequence[_CellBox]) -> tuple[int, int] | None:
    cx, cy = box.cx, box.cy
    for ti, ci, x0, y0, x1, y1 in cells:
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            return ti, ci
    return None


_BAND = 32.0  # height in pixels of the bands of the cells-by-height index
_MAX_BANDS = 4096  # a cell over more bands than this is no table cell: no index then


def _height_index(cells: list[_CellBox]) -> dict[int, list[_CellBox]] | None:
    """The cells over each band of page height (in their order): a word is tested only against the cells
    of its centre's band, which hold every cell whose height range holds that centre. None when a
    cell's height is not a finite, sensible range."""
    index: dict[int, list[_CellBox]] = {}
    for cell in cells:
        y0, y1 = cell[3], cell[5]
        if not (math.isfinite(y0) and math.isfinite(y1)):
            return None
        first, last = math.floor(y0 / _BAND), math.floor(y1 / _BAND)
        if last - first > _MAX_BANDS:
            return None
        for k in range(first, last + 1):
            index.setdefault(k, []).append(cell)
    return index


def assign_words(words: Iterable[Word], tables: Sequence[PageTable]) -> Assignment:
    """Each word to the cell holding it; a word over a vertical cell border is split there."""
    result = Assignment()
    cells = _cell_boxes(tables)  # plain floats: every word is tested against the cells of its height
    bands = _height_index(cells)
    none: list[_CellBox] = []
    for word in words:
        b = word.bbox
        cy, wx0, wx1 = b.cy, b.x0, b.x1
        near = cells if bands is None or not math.isfinite(cy) else bands.get(math.floor(cy / _BAND), none)
        # borders of the cells the word overlaps, in the row band of its centre
        cuts: list[float] = []
        for _, _, x0, y0, x1, y1 in near:
            if y0 <= cy <= y1 and x0 < wx1 and x1 > wx0:
                cuts.extend([x0, x1])
        for piece in split_word(word, cuts) if cuts else [word]:
            hit = _locate_in(piece.bbox, near)  # a piece has its word's height: the same band
            if hit is None:
                result.free.append(piece)
            else:
                result.cells.setdefault(hit, []).append(piece)
    return result


def group_lines(words: Iterable[Word]) -> list[list[Word]]:
    """Words grouped into text lines (vertical overlap), lines top to bottom, words left to right."""
    words = list(words)
    if len(words) <= 1:  # most cells: nothing to group
        return [words] if words else []
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.bbox.cy, w.bbox.x0)):
        for line in lines:
            ref = line[-1].bbox
            overlap = min(ref.y1, word.bbox.y1) - max(ref.y0, word.bbox.y0)
            if overlap > 0.5 * min(ref.height, word.bbox.height):
                line.append(word)
                break
        else:
            lines.append([word])
    for line in lines:
        line.sort(key=lambda w: w.bbox.x0)
    lines.sort(key=lambda ln: min(w.bbox.y0 for w in ln))
    return lines


def _join_pair(left: str, right: str) -> str:
    # Wrapped Chinese text and numbers join without a space; two Latin words keep one.
    if left and right and left[-1].isascii() and left[-1].isalpha() and right[0].isascii() and right[0].isalpha():
        return left + " " + right
    return left + right


def join_text(lines: Sequence[Sequence[Word]] | Sequence[Word]) -> str:
    """Text of a cell from its lines in reading order, without wrap spaces between Chinese characters."""
    text = ""
    for line in lines:
        part = " ".join(w.text for w in line) if not isinstance(line, Word) else line.text
        text = _join_pair(text, clean_cell_text(part))
    return clean_cell_text(text)


def free_lines_from_words(words: Iterable[Word], params: LayoutParams) -> list[Word]:
    """Words outside tables joined into one Word per text line (pieces far apart on a line stay apart)."""
    out: list[Word] = []
    gap = 2.5 * params.px(params.em)
    for line in group_lines(words):
        run: list[Word] = []
        for w in line:
            if run and w.bbox.x0 - run[-1].bbox.x1 > gap:
                out.append(_merge_run(run))
                run = []
            run.append(w)
        if run:
            out.append(_merge_run(run))
    return out


def _merge_run(run: Sequence[Word]) -> Word:
    box = BBox.enclosing(w.bbox for w in run)
    assert box is not None
    return Word(clean_cell_text(" ".join(w.text for w in run)), box, min(w.confidence for w in run))


# ---------------------------------------------------------------------------------------------- columns


def unify_columns(tables: Sequence[Sequence[float]], tol: float = 0.008) -> tuple[tuple[float, ...], list[list[int]]]:
    """One document-wide column grid from each table's column lines (as fractions of its width).

    Returns the edges (fractions, 0.0 and 1.0 included) and, per table, the edge index of each of its
    column lines. Lines of different tables within ``tol`` are one edge; two lines of one table never are.

    Tables are taken in turn, each table's lines matched in order to the edges so far (an alignment
    that pairs lines with the nearest edges within ``tol``, never crossing): a table may have two lines
    closer than ``tol`` (the border of its funds block beside the border of its indicator block), and
    a later table's line then joins the one it is nearest to, not whichever comes first.
    """
    clusters: list[list[float]] = []  # positions of the lines in each edge, kept sorted by mean
    members: list[list[tuple[int, int]]] = []  # (table, line) of each edge
    centers: list[float] = []  # the mean of each cluster (np.mean once per change: it costs more than the rest)
    for ti, fractions in enumerate(tables):
        lines = sorted((float(f), li) for li, f in enumerate(fractions))
        matched = _align_lines([f for f, _ in lines], centers, tol)
        for (f, li), k in zip(lines, matched, strict=True):
            if k is not None:
                clusters[k].append(f)
                members[k].append((ti, li))
        for (f, li), k in zip(lines, matched, strict=True):
            if k is None:
                clusters.append([f])
                members.append([(ti, li)])
        centers = [float(np.mean(c)) for c in clusters]
        order = sorted(range(len(clusters)), key=centers.__getitem__)
        clusters = [clusters[k] for k in order]
        members = [members[k] for k in order]
        centers = [centers[k] for k in order]
    if not clusters:
        return (0.0, 1.0), [[] for _ in tables]
    edges = list(centers)
    # outer borders are 0 and 1 by construction; keep them exact
    edges[0], edges[-1] = 0.0, 1.0 if len(edges) > 1 else edges[-1]
    maps: list[list[int]] = [[0] * len(fr) for fr in tables]
    for k, group in enumerate(members):
        for ti, li in group:
            maps[ti][li] = k
    return tuple(edges), maps


def _align_lines(lines: Sequence[float], centers: Sequence[float], tol: float) -> list[int | None]:
    """For each of ``lines`` (sorted) the index of the edge in ``centers`` (sorted) it joins, or None:
    the order-keeping matching of least total distance, a line left alone costing ``tol``."""
    n, m = len(lines), len(centers)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    step = [[0] * (m + 1) for _ in range(n + 1)]  # 1: line alone, 2: edge unused, 3: matched
    cost[0] = [0.0] * (m + 1)
    for j in range(1, m + 1):
        step[0][j] = 2
    for i in range(1, n + 1):
        for j in range(m + 1):
            best, how = cost[i - 1][j] + tol, 1
            if j > 0 and cost[i][j - 1] < best:
                best, how = cost[i][j - 1], 2
            d = abs(lines[i - 1] - centers[j - 1]) if j > 0 else inf
            if d <= tol and cost[i - 1][j - 1] + d < best:
                best, how = cost[i - 1][j - 1] + d, 3
            cost[i][j], step[i][j] = best, how
    out: list[int | None] = [None] * n
    i, j = n, m
    while i > 0:
        how = step[i][j]
        if how == 3:
            out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif how == 1:
            i -= 1
        else:
            j -= 1
    return out
