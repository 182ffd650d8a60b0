"""A second renderer with no office suite: forms drawn straight onto page images with PIL.

It lays tables out itself (character wrapping, merged 一级/二级 runs, rows broken at the page bottom,
repeated headers), so its pages differ from LibreOffice's in the ways two real authoring tools differ:
line breaking, glyph rendering, spacing, rule weights. Because it decides every break, it knows the split
cells exactly and returns them in the same :class:`~.probe.Probe` shape as the office path.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from .docx_render import DASH, IND_HEADER, LABELS, DocPlan, fmt_money, fmt_num, usable_font
from .probe import Probe, _merged_runs, squash


@functools.cache
def font_spec(family: str, bold: bool = False) -> tuple[str, int] | None:
    """(file, face index) of a family, from fontconfig (Noto CJK .ttc files hold several faces)."""
    fc = shutil.which("fc-match")
    if not fc:
        return None
    pattern = f"{family}:bold" if bold else family
    out = subprocess.run([fc, "-f", "%{file}|%{index}", pattern], capture_output=True, text=True,
                         check=False).stdout.strip()
    if "|" not in out:
        return None
    path, idx = out.split("|", 1)
    return path, int(idx or 0)


@functools.cache
def _font(family: str, px: int, bold: bool) -> Any:
    from PIL import ImageFont

    spec = font_spec(family, bold)
    if spec is None:
        return ImageFont.load_default(px)
    return ImageFont.truetype(spec[0], px, index=spec[1])


@dataclass
class Cell:
    col: int
    span: int
    text: str
    align: str = "center"
    bold: bool = False
    key: str | None = None         # truth field path, for split records
    run: int | None = None         # id of a vertically merged run this cell belongs to
    lines: list[str] = field(default_factory=list)


@dataclass
class Row:
    cells: list[Cell]
    form: int
    ind: int | None = None         # indicator index
    header: bool = False
    height: float = 0.0


class Canvas:
    """Pages being drawn, with a cursor; page coordinates in pixels."""

    def __init__(self, plan: DocPlan, dpi: int) -> None:
        from PIL import Image

        self.Image = Image
        lay = plan.layout
        self.k = dpi / 72.0
        w_pt, h_pt = (842.0, 595.0) if lay.landscape else (595.0, 842.0)
        self.size = (round(w_pt * self.k), round(h_pt * self.k))
        self.margin = lay.margin_cm / 2.54 * dpi
        self.pages: list[Any] = []
        self.draws: list[Any] = []
        self.y = 0.0
        self.new_page()

    def new_page(self) -> None:
        from PIL import ImageDraw

        im = self.Image.new("L", self.size, 255)
        self.pages.append(im)
        self.draws.append(ImageDraw.Draw(im))
        self.y = self.margin

    @property
    def draw(self) -> Any:
        return self.draws[-1]

    @property
    def page(self) -> int:
        return len(self.pages) - 1

    @property
    def bottom(self) -> float:
        return self.size[1] - self.margin


def wrap(text: str, font: Any, width: float) -> list[str]:
    """Break text to fit width: anywhere between CJK characters, Latin words and numbers kept whole."""
    if not text:
        return [""]
    tokens = re.findall(r"[A-Za-z0-9.,%+\-=<>≥≤／/:]+|.", text)
    lines, cur = [], ""
    for tok in tokens:
        if font.getlength(cur + tok) <= width or not cur:
            if font.getlength(tok) > width and not cur:
                for ch in tok:  # a token wider than the cell breaks by character
                    if font.getlength(cur + ch) > width and cur:
                        lines.append(cur)
                        cur = ""
                    cur += ch
                continue
            cur += tok
        else:
            lines.append(cur)
            cur = tok.lstrip() if tok.isspace() else tok
    lines.append(cur)
    return lines


def render(plan: DocPlan, dpi: int) -> tuple[list[np.ndarray], Probe]:
    """Draw the plan's pages; returns RGB page arrays and what a probe of the office PDF would say."""
    lay = plan.layout
    family = usable_font(lay.font)
    cv = Canvas(plan, dpi)
    k = cv.k
    px = round(lay.size * k)
    font = _font(family, px, False)
    bold = _font(family, px, True)
    title_font = _font(usable_font(lay.title_font or lay.font), round(lay.title_size * k), True)
    line_h = px * 1.35 * lay.line_spacing
    pad_x = max(2.0, lay.cell_pad / 20 * k)
    pad_y = max(2.0, lay.cell_vpad / 20 * k + px * 0.15)
    rule = max(1, round(lay.border_sz / 8 * k))
    avail = cv.size[0] - 2 * cv.margin
    if lay.landscape:
        avail = min(avail, 24 / 2.54 * dpi)
    x_left = (cv.size[0] - avail) / 2
    pr = Probe(page_sizes=[[cv.size[0] / k, cv.size[1] / k]])
    lo, lc = lay.paren
    run_ids = iter(range(1, 10**6))

    def para(text: str, f: Any, align: str = "left", indent: float = 0.0, gap: float = 0.3) -> None:
        for i, ln in enumerate(wrap(text, f, avail - (indent if True else 0))):
            if cv.y + line_h > cv.bottom:
                cv.new_page()
            w = f.getlength(ln)
            x = x_left + (indent if i == 0 else 0) if align == "left" else x_left + (avail - w) / 2
            cv.draw.text((x, cv.y), ln, font=f, fill=0)
            cv.y += f.size * 1.4 * lay.line_spacing
        cv.y += f.size * gap

    def widths(base: list[float], jit: list[float]) -> list[float]:
        raw = [b * j for b, j in zip(base, jit, strict=False)]
        return [r * avail / sum(raw) for r in raw]

    def layout_rows(rows: list[Row], cols: list[float]) -> None:
        xs = np.cumsum([0.0, *cols])
        for r in rows:
            for c in r.cells:
                w = xs[c.col + c.span] - xs[c.col] - 2 * pad_x
                f = bold if c.bold else font
                c.lines = [ln for part in c.text.split("\n") for ln in wrap(part, f, w)]
            body = [len(c.lines) for c in r.cells if c.run is None]
            r.height = max(body or [1]) * line_h + 2 * pad_y
        # a merged label taller than its rows stretches the run's last row
        runs: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            for c in r.cells:
                if c.run is not None:
                    runs.setdefault(c.run, []).append(i)
        for rid, idx in runs.items():
            lab = next(c for c in rows[idx[0]].cells if c.run == rid)
            need = len(lab.lines) * line_h + 2 * pad_y
            have = sum(rows[i].height for i in idx)
            if need > have:
                rows[idx[-1]].height += need - have

    def table(rows: list[Row], cols: list[float], repeat: Row | None,
              form_i: int) -> list[tuple[int, int, float, float]]:
        """Place rows on pages, breaking a row across the page bottom when allowed; draw text and rules.

        Returns (row index, page, top, bottom) of every placed part."""
        layout_rows(rows + ([repeat] if repeat else []), cols)
        xs = x_left + np.cumsum([0.0, *cols])
        placed: list[tuple[int, int, float, float]] = []
        minpart = 2 if lay.widow_control else 1
        i, offset = 0, 0  # offset: lines of row i already placed on earlier pages
        page_top = -1.0
        while i < len(rows):
            r = rows[i]
            lines = {id(c): (c.lines[offset:] if c.run is None else c.lines) for c in r.cells}
            n = max([len(lines[id(c)]) for c in r.cells if c.run is None] or [1])
            h = n * line_h + 2 * pad_y if offset else max(n * line_h + 2 * pad_y, r.height)
            room = cv.bottom - cv.y
            at_top = abs(cv.y - page_top) < 1
            if h <= room or (at_top and not lay.split_tables):
                _draw_row(r, lines, xs, cv.y, h, n, keep=offset > 0)
                placed.append((i, cv.page, cv.y, cv.y + h))
                cv.y += h
                i, offset = i + 1, 0
                continue
            fit = int((room - 2 * pad_y) // line_h)
            if lay.split_tables and fit >= minpart and n - fit >= minpart:
                # the lines that fit, then the rest at the top of the next page
                _draw_row(r, lines, xs, cv.y, room, fit, keep=True)
                placed.append((i, cv.page, cv.y, cv.y + room))
                for c in r.cells:
                    if c.run is None and c.key and len(lines[id(c)]) > fit:
                        pr.split_cells.append({
                            "form": form_i, "field": c.key, "text": squash(c.text),
                            "pages": [cv.page + 1, cv.page + 2],
                            "cut_at": len(squash("".join(c.lines[: offset + fit]))), "boxes": [],
                        })
                offset += fit
            cv.new_page()
            if repeat is not None:
                _place_header(repeat, xs)
            page_top = cv.y
        _rules(rows, placed, xs)
        _runs(rows, placed, xs)
        return placed

    def _place_header(hdr: Row, xs: np.ndarray) -> None:
        cv.draw.line([(xs[0], cv.y), (xs[-1], cv.y)], fill=0, width=rule)
        lines = {id(c): c.lines for c in hdr.cells}
        _draw_row(hdr, lines, xs, cv.y, hdr.height, 99, keep=False)
        _rules([hdr], [(0, cv.page, cv.y, cv.y + hdr.height)], xs)
        cv.y += hdr.height

    def _draw_row(r: Row, cell_lines: dict[int, list[str]], xs: np.ndarray, y: float, h: float, n: int,
                  keep: bool) -> None:
        for c in r.cells:
            if c.run is not None:
                continue
            lines = cell_lines[id(c)][:n]
            f = bold if c.bold else font
            th = len(lines) * line_h
            ty = y + pad_y if (keep or lay.cell_valign == "top") else y + (h - th) / 2
            for j, ln in enumerate(lines):
                w = f.getlength(ln)
                x0, x1 = xs[c.col] + pad_x, xs[c.col + c.span] - pad_x
                x = x0 if c.align == "left" else (x0 + x1 - w) / 2
                cv.draw.text((x, ty + j * line_h + (line_h - px) / 2), ln, font=f, fill=0)

    def _rules(rows: list[Row], placed: list[tuple[int, int, float, float]], xs: np.ndarray) -> None:
        for idx, page, top, bot in placed:
            d = cv.draws[page]
            r = rows[idx]
            for c in r.cells:
                x0, x1 = xs[c.col], xs[c.col + c.span]
                d.line([(x0, top), (x0, bot)], fill=0, width=rule)
                d.line([(x1, top), (x1, bot)], fill=0, width=rule)
                if c.run is None:
                    d.line([(x0, top), (x1, top)], fill=0, width=rule)
                    d.line([(x0, bot), (x1, bot)], fill=0, width=rule)

    def _runs(rows: list[Row], placed: list[tuple[int, int, float, float]], xs: np.ndarray) -> None:
        """Merged labels: one box per page part; the label where an office suite would print it."""
        parts: dict[int, list[tuple[int, float, float]]] = {}
        cells: dict[int, Cell] = {}
        for idx, page, top, bot in placed:
            for c in rows[idx].cells:
                if c.run is not None:
                    cells[c.run] = c
                    parts.setdefault(c.run, []).append((page, top, bot))
        for rid, segs in parts.items():
            c = cells[rid]
            by_page: dict[int, list[float]] = {}
            for page, top, bot in segs:
                s = by_page.setdefault(page, [top, bot])
                s[0], s[1] = min(s[0], top), max(s[1], bot)
            x0, x1 = xs[c.col], xs[c.col + c.span]
            for page, (top, bot) in by_page.items():
                d = cv.draws[page]
                d.line([(x0, top), (x1, top)], fill=0, width=rule)
                d.line([(x0, bot), (x1, bot)], fill=0, width=rule)
            pages = sorted(by_page)
            th = len(c.lines) * line_h
            # top: the first part; centred over the whole run: the page holding most of it. A part too short
            # for the label does not get it (an office suite would push the text on, not overprint a rule).
            fits = [p for p in pages if by_page[p][1] - by_page[p][0] >= th + pad_y] or pages
            page = fits[0] if lay.merged_valign == "top" else max(fits, key=lambda p: by_page[p][1] - by_page[p][0])
            top, bot = by_page[page]
            ty = top + pad_y if lay.merged_valign == "top" else top + max(pad_y, (bot - top - th) / 2)
            f = bold if c.bold else font
            for j, ln in enumerate(c.lines):
                w = f.getlength(ln)
                cv.draws[page].text(((x0 + x1 - w) / 2, ty + j * line_h + (line_h - px) / 2), ln, font=f, fill=0)

    # ------------------------------------------------------------------ document
    notes = dict(zip(plan.note_before, plan.notes, strict=True))
    started = False
    if plan.cover:
        para(plan.cover[0], title_font, "center", gap=0.8)
        for p in plan.cover[1:]:
            para(p, _font(family, round((lay.size + 1) * k), False), indent=2 * px)
        started = True
    for fi, spec in enumerate(plan.forms):
        f = spec.truth
        if fi in notes:
            if started:
                cv.new_page()
            for j, p in enumerate(notes[fi]):
                para(p, font, indent=2 * px if j else 0, gap=0.1)
            started = True
        if started and (lay.form_break == "page" or fi in notes):
            cv.new_page()
        elif started:
            cv.y += line_h
        started = True
        first_page = cv.page
        if lay.attachment_label:
            para(lay.attachment_label, bold)
        para(f["title"], title_font, "center", gap=0.1)
        if str(f.get("year", "")) not in f["title"]:
            para(f"{lo}{f['year']}年度{lc}", font, "center", gap=0.3)
        unit = spec.meta.get("money_unit", "元")
        if lay.info_line or lay.fund_unit_on_header:
            bits = []
            if lay.info_line:
                bits += [f"填报单位{lo}盖章{lc}：{f['implementing_unit']}", f"填报日期：{plan.info_dates[fi]}"]
            if lay.fund_unit_on_header:
                bits.append(f"金额单位：{unit}")
            para("    ".join(bits), font, gap=0.2)
        lab = LABELS[lay.label_variant % len(LABELS)]
        dash = lay.dash_all
        fund = f["funds"]
        rows: list[Row] = [
            Row([Cell(0, 1, lab["name"]), Cell(1, 7, f["project_name"], "left", key="project_name")], fi),
            Row([Cell(0, 1, lab["dept"]), Cell(1, 3, f["department"], "left"), Cell(4, 1, lab["unit"]),
                 Cell(5, 3, f["implementing_unit"], "left")], fi),
        ]
        frun = next(run_ids)
        flabel = lab["funds"] if lay.fund_unit_on_header else f"{lab['funds']}{lo}{unit}{lc}"
        rows.append(Row([Cell(0, 1, flabel, run=frun)] + [Cell(c, 1, h) for c, h in enumerate(
            ["", "年初预算数", "全年预算数", "全年执行数", "分值", "执行率", "得分"], start=1)], fi))
        for key, label in (("total", lab["total_row"]), ("fiscal_appropriation", lab["fiscal"]),
                           ("carryover", lab["carry"]), ("other", lab["other"])):
            rr = fund.get(key) or {}
            cells = [Cell(0, 1, flabel, run=frun), Cell(1, 1, label)]
            cells += [Cell(c, 1, fmt_money(rr.get(col), lay.money, dash)) for c, col in
                      enumerate(["initial_budget", "annual_budget", "executed"], start=2)]
            if key == "total":
                cells += [Cell(5, 1, fmt_num(rr.get("weight"))), Cell(6, 1, fmt_num(rr.get("execution_rate"))),
                          Cell(7, 1, fmt_num(rr.get("score")))]
            else:
                cells += [Cell(5, 1, DASH), Cell(6, 1, DASH if dash else ""), Cell(7, 1, DASH if dash else "")]
            rows.append(Row(cells, fi))
        grun = next(run_ids)
        goals = f.get("goals") or {}
        rows.append(Row([Cell(0, 1, lab["goals"], run=grun), Cell(1, 3, "预期目标"), Cell(4, 4, "实际完成情况")], fi))
        rows.append(Row([Cell(0, 1, lab["goals"], run=grun),
                         Cell(1, 3, goals.get("expected") or "", "left", key="goals.expected"),
                         Cell(4, 4, goals.get("actual") or "", "left", key="goals.actual")], fi))
        table(rows, widths([1.7, 2.2, 2.7, 2.7, 2.7, 1.0, 1.4, 1.0], lay.col_jitter), None, fi)
        cv.y += rule * 2

        inds = f.get("indicators") or []
        off = 1 if lay.outer_col else 0
        base = [1.6, 1.8, 3.8, 2.0, 2.0, 1.0, 1.0, 2.4]
        cols = widths([0.8, *base], lay.col_jitter) if off else widths(base, lay.col_jitter[:8])
        outer = next(run_ids)
        hdr = Row(([Cell(0, 1, "绩效指标", run=outer)] if off else []) +
                  [Cell(c + off, 1, h, bold=True) for c, h in enumerate(IND_HEADER)], fi, header=True)
        l1w: dict[str, Decimal] = {}
        for ind in inds:
            l1w[ind["level1"]] = l1w.get(ind["level1"], Decimal(0)) + Decimal(str(ind["weight"]))
        run1: int | None = None
        run2: int | None = None
        irows: list[Row] = []
        for i, ind in enumerate(inds):
            if i == 0 or ind["level1"] != inds[i - 1]["level1"]:
                run1 = next(run_ids)
            if i == 0 or ind["level2"] != inds[i - 1]["level2"] or ind["level1"] != inds[i - 1]["level1"]:
                run2 = next(run_ids)
            l1 = ind["level1"]
            if lay.l1_weight_suffix:
                l1 = f"{l1}{lo}{l1w[ind['level1']].normalize():f}分{lc}"
            cells = ([Cell(0, 1, "绩效指标", run=outer)] if off else []) + [
                Cell(off, 1, l1, run=run1), Cell(off + 1, 1, ind["level2"], run=run2),
                Cell(off + 2, 1, ind.get("name") or "", lay.name_align, key=f"indicators[{i}].name"),
                Cell(off + 3, 1, ind.get("target") or (DASH if dash else ""), key=f"indicators[{i}].target"),
                Cell(off + 4, 1, ind.get("actual") or (DASH if dash else ""), key=f"indicators[{i}].actual"),
                Cell(off + 5, 1, fmt_num(ind.get("weight"))), Cell(off + 6, 1, fmt_num(ind.get("score"))),
                Cell(off + 7, 1, ind.get("deviation") or (DASH if dash else ""), key=f"indicators[{i}].deviation"),
            ]
            irows.append(Row(cells, fi, ind=i))
        tot = f.get("total") or {}
        total_row = Row([Cell(0, off + 5, lay.total_label, bold=True), Cell(off + 5, 1, fmt_num(tot.get("weight"))),
                         Cell(off + 6, 1, fmt_num(tot.get("score"))), Cell(off + 7, 1, DASH if dash else "")], fi)
        all_rows = [hdr, *irows, total_row]
        placed = table(all_rows, cols, hdr if lay.repeat_header else None, fi)
        row_page: dict[int, int] = {}
        for idx, page, _top, _bot in placed:
            row_page.setdefault(idx, page)
        rows0 = [row_page[j + 1] for j in range(len(inds))]
        pr.row_pages.append([p + 1 for p in rows0])
        pr.row_boxes.append([None] * len(inds))
        _merged_runs(pr, fi, inds, rows0)
        pr.form_pages.append([first_page + 1, cv.page + 1])
        _idx, tpage, ttop, tbot = placed[-1]
        pr.total_boxes.append({"form": fi, "page": tpage + 1,
                               "box": [x_left / k, ttop / k, (x_left + avail) / k, tbot / k],
                               "page_size": [cv.size[0] / k, cv.size[1] / k]})
    # footer page numbers
    total = len(cv.pages)
    for i, d in enumerate(cv.draws):
        txt = {"zh": f"第 {i + 1} 页  共 {total} 页", "dash": f"- {i + 1} -",
               "plain": str(i + 1)}.get(lay.footer_page_no)
        if txt:
            sf = _font(family, max(8, px - 2), False)
            d.text(((cv.size[0] - sf.getlength(txt)) / 2, cv.size[1] - cv.margin / 2), txt, font=sf, fill=0)
    used = {p for a, b in pr.form_pages for p in range(a, b + 1)}
    pr.note_pages = [p for p in range(1, total + 1) if p not in used]
    pr.page_sizes = [[cv.size[0] / k, cv.size[1] / k] for _ in range(total)]
    for s in pr.split_cells:
        if s["cut_at"] is None:
            s["cut_at"] = 0
    pages = [np.repeat(np.asarray(im)[..., None], 3, axis=2) for im in cv.pages]
    return pages, pr
