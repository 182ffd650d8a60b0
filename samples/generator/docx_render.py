"""Forms -> DOCX (python-docx) -> PDF (LibreOffice headless): the office-software renderer.

The DOCX is built the way a clerk's Word template is: a header table (project, departments, funds,
goals) and an indicator table with vertically merged 一级/二级 cells, optional outer 绩效指标 column,
optional repeated header row, rows allowed to break across pages. LibreOffice then does the real
typesetting (wrapping, page breaks, split rows), which is why the split cells are found afterwards in
the PDF's text layer (see ``probe``), not predicted here.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .forms import FormSpec
from .layout import FALLBACK_FONT, Layout

DASH = "—"


class RenderError(RuntimeError):
    pass


@dataclass
class DocPlan:
    """What goes into one document, in order: forms, with note pages before some of them."""

    forms: list[FormSpec]
    layout: Layout
    note_before: list[int]           # indices of forms preceded by an explanatory page
    notes: list[list[str]]           # the note paragraphs, one list per entry of note_before
    cover: list[str]                 # report paragraphs of a cover page ([] for none)
    info_dates: list[str]            # 填报日期 per form (used when layout.info_line)
    push_pt: dict[int, float] = field(default_factory=dict)  # blank space above a form (moves its page breaks)


# ---------------------------------------------------------------------------------------------- fonts


@functools.cache
def installed_families() -> frozenset[str]:
    """Font families fontconfig knows (empty when fc-list is missing)."""
    fc = shutil.which("fc-list")
    if not fc:
        return frozenset()
    out = subprocess.run([fc, ":", "family"], capture_output=True, text=True, check=False).stdout
    return frozenset(f.strip() for line in out.splitlines() for f in line.split(","))


def usable_font(family: str) -> str:
    fams = installed_families()
    return family if not fams or family in fams else FALLBACK_FONT


@functools.cache
def font_file(family: str) -> str | None:
    """Path of a font file for PIL (seals, PIL renderer)."""
    fc = shutil.which("fc-match")
    if not fc:
        return None
    out = subprocess.run([fc, "-f", "%{file}", family], capture_output=True, text=True, check=False).stdout.strip()
    return out or None


# ---------------------------------------------------------------------------------------------- formatting


def fmt_money(value: str | None, style: str, dash: bool) -> str:
    if value is None or value == "":
        return DASH if dash else ""
    if style == "raw":
        return value
    d = Decimal(value)
    places = max(2, -d.as_tuple().exponent) if isinstance(d.as_tuple().exponent, int) else 2
    return f"{d:,.{places}f}" if style == "sep" else f"{d:.{places}f}"


def fmt_num(v: Any) -> str:
    if v is None or v == "":
        return ""
    return str(v)


# ---------------------------------------------------------------------------------------------- docx helpers
# python-docx is imported inside functions: importing the generator must stay cheap and side-effect free.


def _el(tag: str, **attrs: str) -> Any:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    e = OxmlElement(tag)
    for k, v in attrs.items():
        e.set(qn(k), v)
    return e


def _set_run_font(run: Any, family: str, size: float | None = None, bold: bool = False) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.name = family
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = _el("w:rFonts")
        rpr.insert(0, fonts)
    for k in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(k), family)
    if size:
        run.font.size = Pt(size)
    run.font.bold = bold


def _para_format(p: Any, lay: Layout, align: str = "left", indent: bool = False) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    pf = p.paragraph_format
    pf.space_before = Pt(0)
    pf.space_after = Pt(0)
    pf.line_spacing = lay.line_spacing
    pf.widow_control = lay.widow_control
    if indent:
        pf.first_line_indent = Pt(lay.size * 2)
    p.alignment = {"left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER,
                   "right": WD_ALIGN_PARAGRAPH.RIGHT, "justify": WD_ALIGN_PARAGRAPH.JUSTIFY}[align]


def _write_cell(cell: Any, text: str | list[str], lay: Layout, align: str = "center", bold: bool = False) -> None:
    parts = text if isinstance(text, list) else [text]
    paras = cell.paragraphs
    for extra in paras[1:]:
        extra._element.getparent().remove(extra._element)
    p = paras[0]
    for i, part in enumerate(parts):
        if i:
            p = cell.add_paragraph()
        _para_format(p, lay, align)
        if part:
            _set_run_font(p.add_run(part), lay.font, lay.size, bold)
    _valign(cell, lay.cell_valign)


def _valign(cell: Any, where: str) -> None:
    from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT as V

    cell.vertical_alignment = {"top": V.TOP, "center": V.CENTER, "bottom": V.BOTTOM}[where]


def _table(doc: Any, rows: int, widths_twips: Sequence[int], lay: Layout) -> Any:
    from docx.oxml.ns import qn
    from docx.shared import Twips

    t = doc.add_table(rows=rows, cols=len(widths_twips))
    tbl = t._tbl
    tblpr = tbl.tblPr
    for tag in ("w:tblW", "w:tblLayout", "w:tblBorders", "w:tblCellMar", "w:jc"):
        for old in tblpr.findall(qn(tag)):
            tblpr.remove(old)
    tblpr.append(_el("w:tblW", **{"w:w": str(sum(widths_twips)), "w:type": "dxa"}))
    tblpr.append(_el("w:jc", **{"w:val": "center"}))
    borders = _el("w:tblBorders")
    for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
        borders.append(_el(f"w:{side}", **{"w:val": "single", "w:sz": str(lay.border_sz), "w:space": "0",
                                           "w:color": "000000"}))
    tblpr.append(borders)
    tblpr.append(_el("w:tblLayout", **{"w:type": "fixed"}))
    mar = _el("w:tblCellMar")
    for side, w in (("top", lay.cell_vpad), ("left", lay.cell_pad), ("bottom", lay.cell_vpad),
                    ("right", lay.cell_pad)):
        mar.append(_el(f"w:{side}", **{"w:w": str(w), "w:type": "dxa"}))
    tblpr.append(mar)
    grid = tbl.tblGrid
    for gc, w in zip(grid.findall(qn("w:gridCol")), widths_twips, strict=True):
        gc.set(qn("w:w"), str(w))
    for row in t.rows:
        trpr = row._tr.get_or_add_trPr()
        if not lay.split_tables:
            trpr.append(_el("w:cantSplit"))
        for c, w in zip(row.cells, widths_twips, strict=True):
            c.width = Twips(w)
    return t


def _header_row(row: Any) -> None:
    row._tr.get_or_add_trPr().append(_el("w:tblHeader"))


def _add_field(paragraph: Any, instr: str, lay: Layout) -> None:
    fld = _el("w:fldSimple", **{"w:instr": instr})
    r = _el("w:r")
    t = _el("w:t")
    t.text = "1"
    r.append(t)
    fld.append(r)
    paragraph._p.append(fld)


def _widths(base_cm: Sequence[float], jitter: Sequence[float], avail_twips: int) -> list[int]:
    raw = [b * j for b, j in zip(base_cm, jitter, strict=False)]
    scale = avail_twips / sum(raw)
    out = [int(r * scale) for r in raw]
    out[-1] += avail_twips - sum(out)
    return out


# ---------------------------------------------------------------------------------------------- document


LABELS = [
    {"name": "项目名称", "dept": "主管部门", "unit": "实施单位", "funds": "项目资金", "goals": "年度总体目标",
     "total_row": "年度资金总额", "fiscal": "其中：当年财政拨款", "carry": "上年结转资金", "other": "其他资金"},
    {"name": "项目名称", "dept": "主管部门", "unit": "实施单位", "funds": "项目资金", "goals": "年度总体目标",
     "total_row": "年度资金总额：", "fiscal": "其中：财政拨款", "carry": "上年结转资金", "other": "其他资金"},
    {"name": "项目名称", "dept": "主管部门", "unit": "项目实施单位", "funds": "项目资金", "goals": "年度总体目标",
     "total_row": "年度资金总额", "fiscal": "其中：当年财政拨款", "carry": "上年结余结转", "other": "其他资金"},
]
IND_HEADER = ["一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "分值", "得分", "偏差原因分析及改进措施"]


def _form(doc: Any, spec: FormSpec, lay: Layout, first: bool, info_date: str, avail: int, push: float = 0) -> None:
    from docx.enum.text import WD_BREAK

    f = spec.truth
    lo, lc = lay.paren
    dash = lay.dash_all
    lab = LABELS[lay.label_variant % len(LABELS)]
    title_font = usable_font(lay.title_font or lay.font)

    if not first:
        if lay.form_break == "page":
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        else:
            _para_format(doc.add_paragraph(), lay)
    if push > 0:
        from docx.shared import Pt

        sp = doc.add_paragraph()
        _para_format(sp, lay)
        sp.paragraph_format.line_spacing = Pt(push)  # an exact line height: kept even at the top of a page
    if lay.attachment_label:
        p = doc.add_paragraph()
        _para_format(p, lay, "left")
        _set_run_font(p.add_run(lay.attachment_label), title_font, lay.size + 1, True)
    p = doc.add_paragraph()
    _para_format(p, lay, "center")
    _set_run_font(p.add_run(f["title"]), title_font, lay.title_size, True)
    if str(f.get("year", "")) not in f["title"]:
        p = doc.add_paragraph()
        _para_format(p, lay, "center")
        _set_run_font(p.add_run(f"{lo}{f['year']}年度{lc}"), lay.font, lay.size + 1)
    unit = spec.meta.get("money_unit", "元")
    if lay.info_line or lay.fund_unit_on_header:
        p = doc.add_paragraph()
        _para_format(p, lay, "left")
        bits = []
        if lay.info_line:
            bits.append(f"填报单位{lo}盖章{lc}：{f['implementing_unit']}")
            bits.append(f"填报日期：{info_date}")
        if lay.fund_unit_on_header:
            bits.append(f"金额单位：{unit}")
        _set_run_font(p.add_run("    ".join(bits)), lay.font, lay.size)

    # ---- header block: 8 columns
    w8 = _widths([1.7, 2.2, 2.7, 2.7, 2.7, 1.0, 1.4, 1.0], lay.col_jitter, avail)
    t = _table(doc, 9, w8, lay)
    cells = [list(r.cells) for r in t.rows]
    _write_cell(cells[0][0], lab["name"], lay)
    m = cells[0][1].merge(cells[0][7])
    _write_cell(m, f["project_name"], lay, "left")
    _write_cell(cells[1][0], lab["dept"], lay)
    _write_cell(cells[1][1].merge(cells[1][3]), f["department"], lay, "left")
    _write_cell(cells[1][4], lab["unit"], lay)
    _write_cell(cells[1][5].merge(cells[1][7]), f["implementing_unit"], lay, "left")
    fl = cells[2][0].merge(cells[6][0])
    _write_cell(fl, lab["funds"] if lay.fund_unit_on_header else f"{lab['funds']}{lo}{unit}{lc}", lay)
    _valign(fl, "center")
    for c, h in enumerate(["", "年初预算数", "全年预算数", "全年执行数", "分值", "执行率", "得分"], start=1):
        _write_cell(cells[2][c], h, lay)
    fund = f["funds"]
    rows = [("total", lab["total_row"]), ("fiscal_appropriation", lab["fiscal"]), ("carryover", lab["carry"]),
            ("other", lab["other"])]
    for r, (key, label) in enumerate(rows, start=3):
        row = fund.get(key) or {}
        _write_cell(cells[r][1], label, lay)
        for c, col in enumerate(["initial_budget", "annual_budget", "executed"], start=2):
            _write_cell(cells[r][c], fmt_money(row.get(col), lay.money, dash), lay)
        if key == "total":
            _write_cell(cells[r][5], fmt_num(row.get("weight")), lay)
            _write_cell(cells[r][6], fmt_num(row.get("execution_rate")), lay)
            _write_cell(cells[r][7], fmt_num(row.get("score")), lay)
        else:
            _write_cell(cells[r][5], DASH, lay)
            _write_cell(cells[r][6], DASH if dash else "", lay)
            _write_cell(cells[r][7], DASH if dash else "", lay)
    gl = cells[7][0].merge(cells[8][0])
    _write_cell(gl, lab["goals"], lay)
    _valign(gl, "center")
    _write_cell(cells[7][1].merge(cells[7][3]), "预期目标", lay)
    _write_cell(cells[7][4].merge(cells[7][7]), "实际完成情况", lay)
    goals = f.get("goals") or {}
    _write_cell(cells[8][1].merge(cells[8][3]), _goal_parts(goals.get("expected") or "", lay), lay, "justify")
    _write_cell(cells[8][4].merge(cells[8][7]), _goal_parts(goals.get("actual") or "", lay), lay, "justify")

    # a 1-pt paragraph keeps the two tables apart (Word would otherwise join them)
    sp = doc.add_paragraph()
    _para_format(sp, lay)
    from docx.shared import Pt

    sp.paragraph_format.line_spacing = Pt(1)

    # ---- indicator block
    inds = f.get("indicators") or []
    base = [1.6, 1.8, 3.8, 2.0, 2.0, 1.0, 1.0, 2.4]
    jit = lay.col_jitter[1:] if lay.outer_col else lay.col_jitter[:8]
    if lay.outer_col:
        base = [0.8, *base]
        jit = lay.col_jitter
    wi = _widths(base, jit, avail)
    off = 1 if lay.outer_col else 0
    n = len(inds)
    t2 = _table(doc, n + 2, wi, lay)
    cells2 = [list(r.cells) for r in t2.rows]
    for c, h in enumerate(IND_HEADER):
        _write_cell(cells2[0][c + off], h, lay, bold=True)
    if lay.repeat_header:
        _header_row(t2.rows[0])
    if lay.outer_col:
        oc = cells2[0][0].merge(cells2[n][0])
        _write_cell(oc, "绩效指标", lay)
        _valign(oc, "center")
    l1_weight: dict[str, Decimal] = {}
    for ind in inds:
        l1_weight[ind["level1"]] = l1_weight.get(ind["level1"], Decimal(0)) + Decimal(str(ind["weight"]))
    # vertical merges of level-1 / level-2 runs
    for level, key in ((0, "level1"), (1, "level2")):
        start = 0
        for i in range(1, n + 1):
            prev = inds[i - 1]
            same = i < n and inds[i][key] == prev[key] and (level == 0 or inds[i]["level1"] == prev["level1"])
            if same:
                continue
            col = off + level
            cell = cells2[start + 1][col] if i - 1 == start else cells2[start + 1][col].merge(cells2[i][col])
            text = prev[key] or ""
            if level == 0 and lay.l1_weight_suffix and text:
                w = l1_weight[prev["level1"]]
                text = f"{text}{lo}{w.normalize():f}分{lc}"
            _write_cell(cell, text, lay)
            _valign(cell, lay.merged_valign)
            start = i
    for i, ind in enumerate(inds, start=1):
        row = cells2[i]
        _write_cell(row[off + 2], ind.get("name") or "", lay, lay.name_align)
        _write_cell(row[off + 3], ind.get("target") or (DASH if dash else ""), lay)
        _write_cell(row[off + 4], ind.get("actual") or (DASH if dash else ""), lay)
        _write_cell(row[off + 5], fmt_num(ind.get("weight")), lay)
        _write_cell(row[off + 6], fmt_num(ind.get("score")), lay)
        _write_cell(row[off + 7], ind.get("deviation") or (DASH if dash else ""), lay)
    last = cells2[n + 1]
    _write_cell(last[0].merge(last[off + 4]), lay.total_label, lay, bold=True)
    tot = f.get("total") or {}
    _write_cell(last[off + 5], fmt_num(tot.get("weight")), lay)
    _write_cell(last[off + 6], fmt_num(tot.get("score")), lay)
    _write_cell(last[off + 7], DASH if dash else "", lay)


def _goal_parts(text: str, lay: Layout) -> list[str]:
    """Numbered goals as separate paragraphs ('1.…', '2.…') when the layout says so."""
    if not lay.goal_paragraphs:
        return [text]
    import re

    parts = [p for p in re.split(r"(?=(?<![0-9])[0-9]\.(?![0-9]))", text) if p]
    return parts or [text]


def build_docx(plan: DocPlan, path: Path) -> None:
    """Write the plan as a DOCX file."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.text import WD_BREAK
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    lay = plan.layout
    lay.font = usable_font(lay.font)
    doc = Document()
    cp = doc.core_properties
    cp.created = cp.modified = cp.last_printed = datetime(2023, 3, 1)  # deterministic bytes
    cp.author = cp.last_modified_by = ""
    cp.revision = 1
    normal = doc.styles["Normal"]
    normal.font.name = lay.font
    normal.font.size = Pt(lay.size)
    rpr = normal.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = _el("w:rFonts")
        rpr.insert(0, rfonts)
    for k in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        rfonts.set(qn(k), lay.font)
    normal.paragraph_format.widow_control = lay.widow_control
    normal.paragraph_format.space_after = Pt(0)

    sec = doc.sections[0]
    w, h = Cm(21.0), Cm(29.7)
    if lay.landscape:
        sec.orientation = WD_ORIENT.LANDSCAPE
        w, h = h, w
    sec.page_width, sec.page_height = w, h
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(sec, side, Cm(lay.margin_cm))
    avail = int((w - 2 * Cm(lay.margin_cm)) / 635)  # EMU -> twips
    if lay.landscape:
        avail = min(avail, int(Cm(24) / 635))  # landscape forms rarely stretch to the full width

    if lay.footer_page_no:
        fp = sec.footer.paragraphs[0]
        _para_format(fp, lay, "center")
        if lay.footer_page_no == "zh":
            _set_run_font(fp.add_run("第 "), lay.font, lay.size - 1)
            _add_field(fp, "PAGE", lay)
            _set_run_font(fp.add_run(" 页  共 "), lay.font, lay.size - 1)
            _add_field(fp, "NUMPAGES", lay)
            _set_run_font(fp.add_run(" 页"), lay.font, lay.size - 1)
        elif lay.footer_page_no == "dash":
            _set_run_font(fp.add_run("- "), lay.font, lay.size - 1)
            _add_field(fp, "PAGE", lay)
            _set_run_font(fp.add_run(" -"), lay.font, lay.size - 1)
        else:
            _add_field(fp, "PAGE", lay)

    body_started = False
    if plan.cover:
        p = doc.add_paragraph()
        _para_format(p, lay, "center")
        _set_run_font(p.add_run(plan.cover[0]), usable_font(lay.title_font or lay.font), lay.title_size, True)
        for para in plan.cover[1:]:
            q = doc.add_paragraph()
            _para_format(q, lay, "justify", indent=True)
            q.paragraph_format.space_after = Pt(lay.size * 0.5)
            _set_run_font(q.add_run(para), lay.font, lay.size + 1)
        body_started = True
    notes = dict(zip(plan.note_before, plan.notes, strict=True))
    for i, spec in enumerate(plan.forms):
        if i in notes:
            if body_started:
                doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
            for k, para in enumerate(notes[i]):
                q = doc.add_paragraph()
                _para_format(q, lay, "left", indent=k > 0)
                _set_run_font(q.add_run(para), lay.font, lay.size)
            body_started = True
        _form(doc, spec, lay, not body_started, plan.info_dates[i], avail, plan.push_pt.get(i, 0.0))
        body_started = True
    # python-docx starts with one empty paragraph; drop it when the first block is a table's title
    doc.save(str(path))


# ---------------------------------------------------------------------------------------------- LibreOffice


def soffice_path() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(docx_files: Sequence[Path], outdir: Path, timeout: float = 600) -> list[Path]:
    """Convert DOCX files to PDF in one LibreOffice run (start-up is the expensive part).

    A private user profile keeps concurrent runs (other sessions, CI workers) from locking each other.
    """
    exe = soffice_path()
    if not exe:
        raise RenderError("LibreOffice not found: apt-get install -y libreoffice-writer-nogui fonts-noto-cjk")
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="formrescue-lo-") as prof:
        cmd = [exe, f"-env:UserInstallation=file://{prof}", "--headless", "--norestore", "--nologo",
               "--nodefault", "--nolockcheck", "--convert-to", "pdf:writer_pdf_Export", "--outdir", str(outdir),
               *[str(p) for p in docx_files]]
        env = dict(os.environ, SAL_USE_VCLPLUGIN="svp", HOME=prof)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    outs = [outdir / (Path(p).stem + ".pdf") for p in docx_files]
    missing = [p for p in outs if not p.exists()]
    if missing:
        raise RenderError(f"LibreOffice did not write {missing[0].name}: {res.stderr.strip()[-500:]}")
    return outs
