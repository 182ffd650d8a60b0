"""Read back where LibreOffice put things: form page ranges, rows split by page breaks, merged labels that
run past a page, and the box of each form's total row (where the seal goes).

The office PDF's text layer is the ground truth for this: every cell's text is written in one run per
page, so a cell whose text is found only in two pieces on consecutive pages was broken by the page break.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .forms import FormSpec

_WS = re.compile(r"\s+")


def squash(text: str) -> str:
    return _WS.sub("", text or "")


@dataclass
class PageText:
    """The non-space characters of one page with their boxes (PDF points, origin top-left)."""

    text: str
    boxes: list[tuple[float, float, float, float]]
    width: float
    height: float

    def box_of(self, start: int, end: int) -> list[float]:
        bs = self.boxes[start:end]
        return [round(min(b[0] for b in bs), 1), round(min(b[1] for b in bs), 1),
                round(max(b[2] for b in bs), 1), round(max(b[3] for b in bs), 1)]


def read_pages(pdf_path: Path) -> list[PageText]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    pages = []
    try:
        for page in pdf:
            w, h = page.get_size()
            tp = page.get_textpage()
            chars, boxes = [], []
            for i in range(tp.count_chars()):
                c = tp.get_text_range(i, 1)
                if not c or c.isspace():
                    continue
                x0, y0, x1, y1 = tp.get_charbox(i)
                chars.append(c)
                boxes.append((x0, h - y1, x1, h - y0))
            pages.append(PageText("".join(chars), boxes, w, h))
            tp.close()
            page.close()
    finally:
        pdf.close()
    return pages


@dataclass
class Probe:
    form_pages: list[list[int]] = field(default_factory=list)      # 1-based [first, last] per form
    row_pages: list[list[int]] = field(default_factory=list)       # page of each indicator row, per form
    row_boxes: list[list[list[float] | None]] = field(default_factory=list)  # name box on its first page
    split_cells: list[dict[str, Any]] = field(default_factory=list)
    merged_across_pages: list[dict[str, Any]] = field(default_factory=list)
    total_boxes: list[dict[str, Any]] = field(default_factory=list)  # per form: page + box of the total row
    note_pages: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    page_sizes: list[list[float]] = field(default_factory=list)    # points
    goal_boxes: list[list[list[float]]] = field(default_factory=list)  # per form: [page0, x0, y0, x1, y1]


class _Cursor:
    """Walks the document forward so repeated texts (相关方满意度 in two forms) match in order."""

    def __init__(self, pages: list[PageText]) -> None:
        self.pages = pages
        self.page = 0
        self.pos = 0

    def find(self, needle: str) -> tuple[int, int] | None:
        for p in range(self.page, len(self.pages)):
            start = self.pos if p == self.page else 0
            i = self.pages[p].text.find(needle, start)
            if i >= 0:
                return p, i
        return None

    def find_split(self, needle: str) -> tuple[int, int, int, int] | None:
        """(page, start, cut, next_start): needle[:cut] ends page `page`'s text run, the rest opens page+1."""
        for p in range(self.page, len(self.pages) - 1):
            start = self.pos if p == self.page else 0
            here, there = self.pages[p].text, self.pages[p + 1].text
            for cut in range(len(needle) - 1, 0, -1):
                i = here.find(needle[:cut], start)
                if i < 0:
                    continue
                j = there.find(needle[cut:])
                while j >= 0 and there[max(0, j - cut):j] == needle[:cut]:
                    j = there.find(needle[cut:], j + 1)  # the whole text on the next page is no split
                if j < 0:
                    continue
                # a page break cut it: the first piece ends low on its page, the rest starts high on the next
                low = self.pages[p].boxes[i + cut - 1][3] > 0.45 * self.pages[p].height
                high = self.pages[p + 1].boxes[j][1] < 0.55 * self.pages[p + 1].height
                if low and high:
                    return p, i, cut, j
        return None

    def advance(self, page: int, pos: int) -> None:
        self.page, self.pos = page, pos


def probe(pdf_path: Path, forms: list[FormSpec], total_label: str) -> Probe:
    pages = read_pages(pdf_path)
    out = Probe(page_sizes=[[round(p.width, 2), round(p.height, 2)] for p in pages])
    cur = _Cursor(pages)
    label = squash(total_label)
    for fi, spec in enumerate(forms):
        f = spec.truth
        hit = cur.find(squash(f["project_name"]))
        if hit is None:
            out.problems.append(f"form {fi}: project name not found")
            out.form_pages.append([cur.page + 1, cur.page + 1])
            out.row_pages.append([])
            out.row_boxes.append([])
            out.goal_boxes.append([])
            continue
        first_page = hit[0]
        cur.advance(hit[0], hit[1])
        # goals are long and the first cells that may be broken by a page
        cells: list[tuple[str, str]] = [("goals.expected", (f.get("goals") or {}).get("expected") or ""),
                                         ("goals.actual", (f.get("goals") or {}).get("actual") or "")]
        goal_boxes: list[list[float]] = []
        for key, text in cells:
            n_split = len(out.split_cells)
            t = squash(text)
            page = _locate(cur, out, fi, key, t, None)
            if page is not None and t and len(out.split_cells) == n_split:
                goal_boxes.append([page, *cur.pages[cur.page].box_of(cur.pos - len(t), cur.pos)])
        out.goal_boxes.append(goal_boxes)
        rows: list[int] = []
        boxes: list[list[float] | None] = []
        for ri, ind in enumerate(f.get("indicators") or []):
            name = squash(ind.get("name") or "")
            n_split = len(out.split_cells)
            page = _locate(cur, out, fi, f"indicators[{ri}].name", name, None)
            if len(out.split_cells) > n_split:
                boxes.append(out.split_cells[-1]["boxes"][0])
            elif page is not None and name:
                boxes.append(cur.pages[cur.page].box_of(cur.pos - len(name), cur.pos))
            else:
                boxes.append(None)
            mark = (cur.page, cur.pos)
            for key in ("target", "actual", "deviation"):
                text = squash(str(ind.get(key) or ""))
                if len(text) >= 4:
                    _locate(cur, out, fi, f"indicators[{ri}].{key}", text, page)
                    cur.advance(*mark)
            rows.append(page if page is not None else (rows[-1] if rows else first_page))
        out.row_pages.append([r + 1 for r in rows])
        out.row_boxes.append(boxes)
        hit = cur.find(label)
        if hit is None:
            out.problems.append(f"form {fi}: total row not found")
            last_page = rows[-1] if rows else first_page
        else:
            last_page = hit[0]
            pt = pages[hit[0]]
            out.total_boxes.append({"form": fi, "page": hit[0] + 1, "box": pt.box_of(hit[1], hit[1] + len(label)),
                                    "page_size": [round(pt.width, 2), round(pt.height, 2)]})
            cur.advance(hit[0], hit[1] + len(label))
        out.form_pages.append([first_page + 1, last_page + 1])
        _merged_runs(out, fi, f.get("indicators") or [], rows)
    used = {p for a, b in out.form_pages for p in range(a, b + 1)}
    out.note_pages = [p for p in range(1, len(pages) + 1) if p not in used]
    return out


def _locate(cur: _Cursor, out: Probe, fi: int, key: str, text: str, row_page: int | None) -> int | None:
    """Find a cell's text from the cursor on; record it when a page break cut it. Returns its first page."""
    if not text:
        return None
    whole = cur.find(text)
    split = None
    # a whole match on a later page than a split would be: prefer the split (the text is in reading order)
    if whole is None or whole[0] > cur.page:
        split = cur.find_split(text)
    if split is not None and (whole is None or split[0] < whole[0]):
        p, i, cut, j = split
        pages = cur.pages
        out.split_cells.append({
            "form": fi, "field": key, "text": text, "pages": [p + 1, p + 2], "cut_at": cut,
            "boxes": [pages[p].box_of(i, i + cut), pages[p + 1].box_of(j, j + len(text) - cut)],
        })
        cur.advance(p, i + cut)
        return p
    if whole is None:
        out.problems.append(f"form {fi}: {key} not found: {text[:20]}")
        return row_page
    cur.advance(whole[0], whole[1] + len(text))
    return whole[0]


def _merged_runs(out: Probe, fi: int, inds: list[dict[str, Any]], rows: list[int]) -> None:
    """Merged 一级/二级 labels whose rows lie on more than one page (the label is printed on one only)."""
    for level, key in ((1, "level1"), (2, "level2")):
        start = 0
        for i in range(1, len(inds) + 1):
            if i < len(inds) and inds[i][key] == inds[start][key] and inds[i]["level1"] == inds[start]["level1"]:
                continue
            pages = sorted({rows[k] + 1 for k in range(start, i)})
            if len(pages) > 1:
                out.merged_across_pages.append({"form": fi, "level": level, "text": inds[start][key],
                                                "rows": [start, i - 1], "pages": pages})
            start = i
