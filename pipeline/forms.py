"""The 绩效自评表 profile applied to a document Table: forms found, sections read, rows repaired.

Works the same on text dumps and scans. Scans give exact geometry (merged cells, column ranges); dumps
give cell order only, with columns shifted where the source dropped or added empty cells, so dump rows
are aligned by content (what each column can hold) before their cells are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from rapidfuzz import fuzz

from pipeline.datamodel import (
    FUND_COLS,
    INDICATOR_FIELDS,
    MISSING,
    BBox,
    Cell,
    Flag,
    Form,
    Indicator,
    Issue,
    SourceKind,
    Table,
    Value,
)
from pipeline.levels import infer_levels
from pipeline.profile import FormProfile, Vocabulary, label_key
from pipeline.quantity import is_dash, looks_like_score, looks_like_value, to_ascii
from pipeline.text import clean_cell_text, has_cjk

LEVEL_ACCEPT = 0.9  # posterior under which an inferred 一级/二级 label goes to review


class LabelCatalogue(Protocol):
    """What the profile needs from the indicator catalogue (see :mod:`pipeline.catalogue`)."""

    def match_level1(self, text: str) -> object: ...

    def match_level2(self, text: str, level1: str | None = None) -> object: ...

    def level1_of(self, level2: str) -> str | None: ...

    def content_evidence(self, name: str, target: str | None, actual: str | None) -> dict[str, float]: ...

    def level2_names(self, level1: str | None = None) -> tuple[str, ...]: ...

    def level1_names(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Extraction:
    forms: tuple[Form, ...]
    issues: tuple[Issue, ...]


@dataclass
class _Row:
    index: int
    page: int
    cells: list[Cell]  # cells starting in this row, text non-empty

    @property
    def keys(self) -> list[str]:
        return [label_key(c.text) for c in self.cells]

    @property
    def joined(self) -> str:
        return "".join(self.keys)


def _value(cell: Cell | None, text: str | None = None) -> Value:
    if cell is None:
        return MISSING
    shown = clean_cell_text(cell.text if text is None else text)
    return Value(
        text=shown or None,
        raw=cell.raw if cell.raw is not None else cell.text,
        confidence=cell.confidence,
        page=cell.page,
        bbox=cell.bbox,
    )


def _join_values(parts: Sequence[Value]) -> Value:
    """Text of several cells of one field (wrapped over rows or pages) as one value."""
    present = [p for p in parts if p.text]
    if not present:
        return parts[0] if parts else MISSING
    if len(present) == 1:
        return present[0]
    text = present[0].text or ""
    for part in present[1:]:
        nxt = part.text or ""
        glue = " " if text[-1:].isascii() and text[-1:].isalnum() and nxt[:1].isascii() and nxt[:1].isalnum() else ""
        text += glue + nxt
    return Value(
        text=text,
        raw="\n".join(p.raw or p.text or "" for p in present),
        confidence=min(p.confidence for p in present),
        page=present[0].page,
        bbox=present[0].bbox,
    )


# ----------------------------------------------------------------------------------------------- segmentation


def _rows(table: Table) -> list[_Row]:
    grouped = table.rows()
    return [
        _Row(index=r, page=table.row_pages[r], cells=[c for c in grouped[r] if c.text.strip()])
        for r in range(table.n_rows)
    ]


_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")


def _is_title_row(row: _Row, profile: FormProfile) -> bool:
    text = row.joined
    return bool(text) and len(text) <= 40 and any(k in text for k in profile.title_keywords)


def _is_year_row(row: _Row) -> bool:
    text = row.joined
    return bool(text) and len(text) <= 16 and bool(_YEAR.search(text))


def _label_cell(row: _Row, vocab: Vocabulary, *, prefix: bool = False) -> Cell | None:
    for cell in row.cells:
        if vocab.matches(cell.text, prefix=prefix):
            return cell
    return None


def _segment(rows: list[_Row], profile: FormProfile) -> list[tuple[int, int]]:
    """(first row, last row) of each form. A form starts at its title lines or its 项目名称 row (either
    may be damaged by OCR, so both count); a title directly above a 项目名称 row is one start."""
    project = profile.header_fields["project_name"]
    starts: list[int] = []
    last_anchor = -10
    for i, row in enumerate(rows):
        is_project = _label_cell(row, project, prefix=True) is not None
        is_title = _is_title_row(row, profile)
        if not (is_project or is_title):
            continue
        between = rows[last_anchor + 1 : i] if last_anchor >= 0 else []
        same_block = i - last_anchor <= 4 and all(
            not r.cells or _is_title_row(r, profile) or _is_year_row(r) or r.joined.startswith("附件") for r in between)
        if not same_block:
            start = i
            # Year and attachment lines directly above a 项目名称 row without a title belong to the form.
            while is_project and start - 1 > (starts[-1] if starts else -1) and i - (start - 1) <= 3:
                above = rows[start - 1]
                if not above.cells or _is_year_row(above) or above.joined.startswith("附件"):
                    start -= 1
                else:
                    break
            while start < i and not rows[start].cells:
                start += 1
            starts.append(start)
        last_anchor = i
    return [(s, (starts[k + 1] - 1) if k + 1 < len(starts) else len(rows) - 1) for k, s in enumerate(starts)]


# ----------------------------------------------------------------------------------------------- alignment

Compat = Callable[[str, str], float]


def _overlap(cell: Cell, span: tuple[int, int]) -> int:
    return max(0, min(cell.last_col, span[1]) - max(cell.col, span[0]) + 1)


def _align(
    cells: Sequence[Cell],
    columns: dict[str, tuple[int, int]],
    geometric: bool,
    compat: Compat,
) -> dict[str, list[Cell]]:
    """Assign a row's cells to semantic columns.

    Scans: by column overlap with the header cells. Dumps: the cells' order is right but columns may be
    shifted by dropped or extra empty cells, so the shift that best fits what each column can hold wins.
    """
    result: dict[str, list[Cell]] = {}
    if geometric:
        for cell in cells:
            # the first column of the largest overlap (max's choice), _overlap spelled out: rows x columns
            lo, hi = cell.col, cell.last_col
            best, most = "", 0
            for column, (first, last) in columns.items():
                overlap = (hi if hi < last else last) - (lo if lo > first else first) + 1
                if overlap > most:
                    best, most = column, overlap
            if most > 0:
                result.setdefault(best, []).append(cell)
        return result
    by_position = {span[0]: name for name, span in columns.items()}
    best_shift, best_score = 0, float("-inf")
    for shift in range(-3, 4):
        score = -0.25 * abs(shift)
        for cell in cells:
            name = by_position.get(cell.col + shift)
            score += compat(name, cell.text) if name else -4.0
        if score > best_score:
            best_shift, best_score = shift, score
    for cell in cells:
        name = by_position.get(cell.col + best_shift)
        if name:
            result.setdefault(name, []).append(cell)
    return result


def _header_name(text: str, vocab: dict[str, Vocabulary]) -> tuple[float, str]:
    """(score, column) of the column a header cell names best; score 0.0 when it names none, or two
    equally well (unless exactly)."""
    scored = [(words.score(text), name) for name, words in vocab.items()]
    if not scored:
        return 0.0, ""
    score, name = max(scored)  # ties broken as a descending sort does: by name
    if sum(1 for other, _ in scored if other == score) > 1 and score < 1.0:
        return 0.0, ""
    return score, name


def _header_columns(row: _Row, vocab: dict[str, Vocabulary], named: dict[str, tuple[float, str]] | None = None,
                    ) -> dict[str, tuple[int, int]]:
    """Semantic column -> (first, last) grid column, from the header cells that name them.

    Each cell names at most one column, the one it matches best (一级指标 / 二级指标 / 三级指标 differ by
    one character, so an OCR-tolerant match must not let one header stand for another); each column
    takes its best-matching cell. ``named`` remembers :func:`_header_name` per cell text for ``vocab``
    (a form's rows are asked about again and again, for every kind of header).
    """
    best_cell: dict[str, tuple[float, Cell]] = {}
    for cell in row.cells:
        found = named.get(cell.text) if named is not None else None
        if found is None:
            found = _header_name(cell.text, vocab)
            if named is not None:
                named[cell.text] = found
        score, name = found
        if score <= 0:
            continue  # not a header, or equally close to two
        if name not in best_cell or score > best_cell[name][0]:
            best_cell[name] = (score, cell)
    return {name: (cell.col, cell.last_col) for name, (_, cell) in best_cell.items()}


def _complete_by_order(row: _Row, found: dict[str, tuple[int, int]], order: Sequence[str]
                       ) -> dict[str, tuple[int, int]]:
    """Name header cells OCR made unreadable ("三标" for 三级指标) from the columns' fixed order: the
    unnamed cells between two named ones take the missing names between them, when the counts agree.
    A run at the left edge may include an outer label column (绩效指标), so it is matched from the right."""
    named = {span: name for name, span in found.items()}
    cells = sorted(row.cells, key=lambda c: c.col)
    result = dict(found)
    position = {name: k for k, name in enumerate(order)}
    run: list[Cell] = []
    previous: int | None = None  # order index of the last named cell

    def settle(run: list[Cell], lo: int | None, hi: int | None) -> None:
        missing = [n for n in order[(lo + 1 if lo is not None else 0):(hi if hi is not None else len(order))]
                   if n not in result]
        if not run or not missing:
            return
        if lo is None:  # left edge: align right
            pairs = list(zip(reversed(run), reversed(missing), strict=False))
        elif hi is None:  # right edge: align left
            pairs = list(zip(run, missing, strict=False))
        elif len(run) == len(missing):
            pairs = list(zip(run, missing, strict=True))
        else:
            return
        for cell, name in pairs:
            result[name] = (cell.col, cell.last_col)

    for cell in cells:
        name = named.get((cell.col, cell.last_col))
        if name is None or name not in position:
            run.append(cell)
            continue
        settle(run, previous, position[name])
        run, previous = [], position[name]
    settle(run, previous, None)
    return result


# ----------------------------------------------------------------------------------------------- the form


@dataclass
class _IndicatorRow:
    rows: list[int]
    pages: list[int]
    values: dict[str, Value]
    level1_seen: Value = MISSING
    level2_seen: Value = MISSING
    level1_label: str | None = None  # canonical label printed on/covering this row
    level2_label: str | None = None
    notes: list[str] = field(default_factory=list)
    uncertain: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = field(default_factory=dict)

    def has_values(self) -> bool:
        return any(not self.values.get(k, MISSING).empty for k in ("target", "actual", "weight", "score"))

    def has_text(self) -> bool:
        return any(self.values.get(k, MISSING).text for k in ("name", "deviation"))


class FormReader:
    """Reads forms from a Table with one profile and one catalogue."""

    def __init__(self, profile: FormProfile, catalogue: LabelCatalogue) -> None:
        self.profile = profile
        self.catalogue = catalogue
        self._named: dict[int, dict[str, tuple[float, str]]] = {}  # id(vocabulary) -> _header_name per text

    def _header_columns(self, row: _Row, vocab: dict[str, Vocabulary]) -> dict[str, tuple[int, int]]:
        # vocab is one of self.profile's column vocabularies: it outlives this reader, so its id is a key
        return _header_columns(row, vocab, self._named.setdefault(id(vocab), {}))

    # -- entry point

    def extract(self, table: Table) -> Extraction:
        rows = _rows(table)
        spans = _segment(rows, self.profile)
        issues: list[Issue] = []
        if not spans:
            return Extraction((), (Issue("not_a_form", "no 绩效自评表 found: no 项目名称 row and no form title"),))
        covered: set[int] = set()
        forms: list[Form] = []
        for first, last in spans:
            if not self._holds_a_form(rows[first : last + 1]):
                continue  # a title-like line in other text (a notes page): not a form
            form, used = self._read_form(table, rows, first, last, len(forms))
            forms.append(form)
            covered.update(used)
        if not forms:
            return Extraction((), (Issue("not_a_form", "no 绩效自评表 found: a title but no form sections"),))
        skipped_pages = sorted({rows[i].page for i in range(len(rows)) if rows[i].cells and i not in covered})
        if skipped_pages:
            pages = ", ".join(str(p) for p in skipped_pages)
            issues.append(Issue("non_form_content", f"text that is not part of a form was skipped (page {pages})"))
        return Extraction(tuple(forms), tuple(issues))

    # -- one form

    def _read_form(self, table: Table, rows: list[_Row], first: int, last: int, index: int) -> tuple[Form, set[int]]:
        profile = self.profile
        region = rows[first : last + 1]
        issues: list[Issue] = []
        flags: list[Flag] = []
        used: set[int] = set()

        def find(predicate: Callable[[_Row], bool], start: int = 0) -> int | None:
            for k in range(start, len(region)):
                if predicate(region[k]):
                    return k
            return None

        funds_at = find(lambda r: self._count_matches(r, profile.funds_columns) >= 3)
        ind_at = find(lambda r: self._is_indicator_header(r))
        goals_at = find(lambda r: self._count_matches(r, profile.goals_columns) >= 1
                        and not self._is_indicator_header(r)
                        and (funds_at is None or r.index != region[funds_at].index))
        if goals_at is None:
            goals_at = find(lambda r: _label_cell(r, profile.goals_labels) is not None
                            and not self._is_indicator_header(r))
        total_at = find(lambda r: bool(r.cells) and profile.total_labels.matches(r.cells[0].text), ind_at or 0)
        if ind_at is not None and total_at is not None and total_at < ind_at:
            total_at = None

        markers = sorted(k for k in (funds_at, goals_at, ind_at) if k is not None)
        first_marker = markers[0] if markers else len(region)

        def missing(section: str, message: str) -> None:
            issues.append(Issue("missing_section", message, section))
            flags.append(Flag(section, "missing_section", message, 0.0))

        def section_end(start: int) -> int:
            later = [k for k in (*markers, total_at) if k is not None and k > start]
            return min(later) if later else len(region)

        # Title lines, header fields.
        header_rows = region[:first_marker]
        used.update(r.index for r in header_rows)
        header, header_flags = self._read_header(header_rows)
        flags.extend(header_flags)

        funds: dict[str, dict[str, Value]] = {name: {} for name in ("total", "fiscal_appropriation", "carryover",
                                                                     "other")}
        if funds_at is not None:
            end = section_end(funds_at)
            funds = self._read_funds(table, region[funds_at:end])
            used.update(r.index for r in region[funds_at:end])
        else:
            missing("funds", "the funds block (年初预算数 / 全年预算数 / 全年执行数) was not found")

        goals: dict[str, Value] = {"expected": MISSING, "actual": MISSING}
        if goals_at is not None:
            end = section_end(goals_at)
            goals = self._read_goals(table, region[goals_at:end])
            used.update(r.index for r in region[goals_at:end])
        else:
            missing("goals", "the 年度总体目标 block was not found")

        indicators: list[Indicator] = []
        total: dict[str, Value] = {"weight": MISSING, "score": MISSING}
        if ind_at is not None:
            end = total_at if total_at is not None else len(region)
            ind_rows = region[ind_at:end]
            used.update(r.index for r in ind_rows)
            header_row = region[ind_at]
            indicators, ind_flags, ind_issues = self._read_indicators(table, header_row, ind_rows[1:])
            flags.extend(ind_flags)
            issues.extend(ind_issues)
            if total_at is not None:
                used.add(region[total_at].index)
                total = self._read_total(table, header_row, region[total_at])
            else:
                missing("total", "the 总分 row was not found: the indicator table may be cut off")
        else:
            missing("indicators", "the indicator table (一级指标 / 二级指标 / 三级指标) was not found")

        pages = tuple(sorted({r.page for r in region if r.cells and r.index in used}))
        form = Form(
            form_index=index,
            pages=pages,
            header=header,
            funds=funds,
            goals=goals,
            indicators=tuple(indicators),
            total=total,
            issues=tuple(issues),
            flags=tuple(flags),
        )
        return form, used

    def _holds_a_form(self, region: list[_Row]) -> bool:
        profile = self.profile
        return any(_label_cell(r, profile.header_fields["project_name"], prefix=True) is not None
                   or self._count_matches(r, profile.funds_columns) >= 3 or self._is_indicator_header(r)
                   for r in region)

    def _count_matches(self, row: _Row, vocab: dict[str, Vocabulary]) -> int:
        return len(self._header_columns(row, vocab))

    def _is_indicator_header(self, row: _Row) -> bool:
        found = self._header_columns(row, self.profile.indicator_columns)
        return len(found) >= 3 and any(k in found for k in ("name", "level1", "level2"))

    # -- header

    def _read_header(self, rows: list[_Row]) -> tuple[dict[str, Value], list[Flag]]:
        profile = self.profile
        header: dict[str, Value] = {name: MISSING for name in ("title", "year", "project_name", "department",
                                                               "implementing_unit")}
        flags: list[Flag] = []
        for row in rows:
            if header["title"].text is None and _is_title_row(row, profile):
                cell = next(c for c in row.cells if any(k in label_key(c.text) for k in profile.title_keywords))
                header["title"] = _value(cell, re.sub(r"[(（][^)）]*年度?[)）]", "", cell.text))
            for cell in row.cells:
                match = _YEAR.search(to_ascii(cell.text))
                if header["year"].text is None and match and len(label_key(cell.text)) <= 40:
                    header["year"] = replace(_value(cell), text=match.group(1))
            for position, cell in enumerate(row.cells):
                for name, vocab in profile.header_fields.items():
                    if header[name].text is not None:
                        continue
                    rest = vocab.remainder(cell.text)
                    if rest is not None:  # "项目名称：XXX" in one cell
                        header[name] = replace(_value(cell), text=rest)
                    elif vocab.score(cell.text) >= 0.85:
                        value_cell = self._next_value_cell(row.cells, position)
                        header[name] = _value(value_cell) if value_cell else MISSING
        self._split_swallowed_labels(header)
        for name in ("project_name", "department", "implementing_unit", "year"):
            if header[name].text is None:
                flags.append(Flag(name, "missing_value", f"{name} was not found on the form", 0.0))
        return header, flags

    def _split_swallowed_labels(self, header: dict[str, Value]) -> None:
        """A missed ruling line can put the next label and its value in one cell with this value
        ("兰州市生态环境局实施单位兰州市环境监察支队"): split it at that label."""
        for name in self.profile.header_fields:
            value = header.get(name, MISSING)
            if not value.text:
                continue
            for other, other_vocab in self.profile.header_fields.items():
                if other == name:
                    continue
                for variant in sorted(other_vocab.variants, key=len, reverse=True):
                    at = value.text.find(variant)
                    if at <= 0 or len(variant) < 4:
                        continue
                    before, after = value.text[:at], value.text[at + len(variant):].lstrip(":：")
                    header[name] = replace(value, text=before, confidence=min(value.confidence, 0.8))
                    if after and header.get(other, MISSING).text is None:
                        header[other] = replace(value, text=after, confidence=min(value.confidence, 0.8))
                    break
                else:
                    continue
                break

    def _next_value_cell(self, cells: list[Cell], position: int) -> Cell | None:
        for cell in cells[position + 1 :]:
            if any(v.matches(cell.text) for v in self.profile.header_fields.values()):
                return None
            return cell
        return None

    # -- funds

    def _read_funds(self, table: Table, rows: list[_Row]) -> dict[str, dict[str, Value]]:
        profile = self.profile
        columns = _complete_by_order(rows[0], self._header_columns(rows[0], profile.funds_columns), FUND_COLS)
        geometric = table.kind is not SourceKind.TEXT_DUMP
        funds: dict[str, dict[str, Value]] = {name: {} for name in profile.funds_rows}

        def compat(name: str, text: str) -> float:
            if is_dash(text):
                return 0.5  # a dash fits any column: it says nothing about the shift
            if name == "execution_rate":
                return 2.0 if "%" in to_ascii(text) else 0.0
            if name in ("weight", "score"):
                return 1.5 if looks_like_score(text) else -1.0
            return 2.0 if re.fullmatch(r"[0-9][0-9.,]*", to_ascii(text)) else -1.0

        for row in rows[1:]:
            if not any(c.ruled for c in row.cells):
                continue
            label_cell, row_name = None, None
            best = 0.0
            for cell in row.cells:
                for name, vocab in profile.funds_rows.items():
                    score = vocab.score(cell.text)
                    if score > best:
                        best, label_cell, row_name = score, cell, name
            if label_cell is None or row_name is None or funds[row_name]:
                continue
            rest = [c for c in row.cells if c is not label_cell and c.col > label_cell.col
                    and not profile.funds_labels.matches(c.text)]
            aligned = _align(rest, columns, geometric, compat)
            funds[row_name] = {name: _join_values([_value(c) for c in cells]) for name, cells in aligned.items()}
        return funds

    # -- goals

    def _read_goals(self, table: Table, rows: list[_Row]) -> dict[str, Value]:
        profile = self.profile
        columns = self._header_columns(rows[0], profile.goals_columns)
        geometric = table.kind is not SourceKind.TEXT_DUMP and len(columns) == 2
        parts: dict[str, list[Value]] = {"expected": [], "actual": []}
        for row in rows:
            texts = [c for c in row.cells if not profile.goals_labels.matches(c.text)
                     and not any(v.score(c.text) >= 0.9 for v in profile.goals_columns.values())]
            if not texts:
                continue
            if geometric:
                for name, cells in _align(texts, columns, True, lambda n, t: 0.0).items():
                    parts[name].extend(_value(c) for c in cells)
            elif len(texts) >= 2:
                parts["expected"].append(_value(texts[0]))
                parts["actual"].append(_join_values([_value(c) for c in texts[1:]]))
            else:
                cell = texts[0]
                if "actual" in columns and "expected" in columns:
                    near_actual = abs(cell.col - columns["actual"][0]) < abs(cell.col - columns["expected"][0])
                    parts["actual" if near_actual else "expected"].append(_value(cell))
                else:
                    parts["expected"].append(_value(cell))
        return {name: _join_values(values) for name, values in parts.items()}

    # -- indicators

    def _indicator_compat(self) -> Compat:
        catalogue = self.catalogue
        outer = self.profile.indicator_outer

        def is_label(text: str) -> bool:
            return (_accepted(catalogue.match_level1(text)) is not None
                    or _accepted(catalogue.match_level2(text)) is not None)

        def compat(name: str, text: str) -> float:
            label = is_label(text)
            if name in ("level1", "level2"):
                if label:
                    return 3.0
                return 1.0 if outer.matches(text, fuzzy=False) and name == "level1" else -2.0
            if name == "name":
                if label or outer.matches(text, fuzzy=False):
                    return -1.0
                if looks_like_score(text):
                    return -2.0
                if looks_like_value(text) and len(to_ascii(text)) <= 6:
                    return -0.5
                return 2.0 if has_cjk(text) else 0.5
            if name in ("target", "actual"):
                if looks_like_value(text):
                    return 2.0
                if looks_like_score(text):
                    return 0.5
                return -1.0 if len(text) > 14 else 0.0
            if name in ("weight", "score"):
                return 2.5 if looks_like_score(text) else (-0.5 if is_dash(text) else -2.0)
            if name == "deviation":
                if looks_like_score(text):
                    return -1.0
                return 1.0 if to_ascii(text) in ("无", "/", "—") else 0.5
            return 0.0

        return compat

    def _read_indicators(self, table: Table, header: _Row, rows: list[_Row]
                         ) -> tuple[list[Indicator], list[Flag], list[Issue]]:
        profile = self.profile
        columns = _complete_by_order(header, self._header_columns(header, profile.indicator_columns), INDICATOR_FIELDS)
        geometric = table.kind is not SourceKind.TEXT_DUMP
        compat = self._indicator_compat()
        records: list[_IndicatorRow] = []
        issues: list[Issue] = []
        carried: dict[str, tuple[Cell, tuple[str, Value] | None]] = {}
        first_body_row: dict[int, int] = {}  # page -> first indicator row on it (after a repeated header)
        for row in rows:
            if not row.cells or self._is_indicator_header(row) or not any(c.ruled for c in row.cells):
                continue  # empty, a repeated header, or a line outside the ruling (page number, footer)
            first_body_row.setdefault(row.page, row.index)
            cells = [c for c in row.cells
                     if not (c.row_span > 2 and profile.indicator_outer.matches(c.text, fuzzy=False))]
            aligned = _align(cells, columns, geometric, compat)
            record = _IndicatorRow(rows=[row.index], pages=[row.page], values={})
            for name in INDICATOR_FIELDS:
                placed = aligned.get(name, [])
                if name in ("level1", "level2"):
                    continue
                # A label that landed in a value column of a dump row stays a value; labels are read below.
                record.values[name] = _join_values([_value(c) for c in placed])
            # 一级 first (its own cell, a merged cell from above, a cell carried over a page break), so
            # the 二级 is read knowing its parent.
            for column in ("level1", "level2"):
                placed = aligned.get(column, [])
                if placed:
                    # A label cell cut in two by a stray line ("可持" | "续影响") is read as one.
                    self._observe_label(record, placed, column)
                if not geometric or column not in columns:
                    continue
                for cell in table.covering(row.index):
                    if not _overlap(cell, columns[column]):
                        continue
                    if cell.row < row.index and not _blank(cell):
                        # A merged label cell that started on a row above still labels this row.
                        self._observe_label(record, [cell], column)
                    elif (_blank(cell) and cell.row == first_body_row.get(cell.page) and records
                          and records[-1].pages[-1] != cell.page
                          and (column not in carried or carried[column][0] is not cell)):
                        # An empty bordered cell opening a page continues the merged cell cut by the
                        # page break: it keeps the label of the last row before the break.
                        carried[column] = (cell, _label_of(records[-1], column))
                    carry = carried.get(column)
                    if carry is not None and carry[0] is cell and carry[1] is not None:
                        label, seen = carry[1]
                        setattr(record, f"{column}_label", getattr(record, f"{column}_label") or label)
                        if getattr(record, f"{column}_seen") is MISSING:
                            setattr(record, f"{column}_seen", seen)
            self._repair_polluted(record)
            records.append(record)
        records = self._join_broken_rows(table, records, issues)
        flags: list[Flag] = []
        indicators = self._decide_levels(table, records, flags)
        return indicators, flags, issues

    def _observe_label(self, record: _IndicatorRow, cells: list[Cell], column: str) -> None:
        cells = [c for c in cells if not _blank(c) and not self.profile.indicator_outer.matches(c.text, fuzzy=False)]
        if not cells:
            return
        text = "".join(c.text for c in sorted(cells, key=lambda c: c.col))
        value = _join_values([_value(c) for c in cells])
        value = replace(value, text=text, bbox=BBox.enclosing(c.bbox for c in cells if c.bbox) or value.bbox)
        match1 = self.catalogue.match_level1(text)
        match2 = self.catalogue.match_level2(text, record.level1_label)
        level1, level2 = _accepted(match1), _accepted(match2)
        # The column decides which level a label is read as first: 成本指标 is a 一级 in the 2021 layout
        # (over 经济成本指标 …) and a 二级 under 产出指标 in the classic one.
        order = (("level1", level1), ("level2", level2)) if column == "level1" else (("level2", level2),
                                                                                    ("level1", level1))
        for level, label in order:
            if label is not None:
                if getattr(record, f"{level}_label") is None:
                    setattr(record, f"{level}_label", label)
                    setattr(record, f"{level}_seen", value)
                return
        # Not certain: an OCR-damaged label ("服务对象源") takes its best candidate, and is flagged.
        level = column
        candidates = _candidates(match2 if column == "level2" else match1)
        if not candidates:
            other = _candidates(match1 if column == "level2" else match2)
            if other:
                level, candidates = ("level1" if column == "level2" else "level2"), other
        if not candidates:
            candidates = self._nearest_label(text, column, record.level1_label)
        if candidates and getattr(record, f"{level}_label") is None:
            setattr(record, f"{level}_label", candidates[0][0])
            setattr(record, f"{level}_seen", replace(value, confidence=min(value.confidence, candidates[0][1])))
            record.uncertain[level] = (text, candidates)
        elif not candidates and getattr(record, f"{column}_label") is None:
            # A label the catalogue does not know at all: kept as printed, in the column it was found in, and
            # flagged: a form's own 二级 name, or a damaged cell read in part ("指标", "标").
            setattr(record, f"{column}_label", clean_cell_text(text))
            setattr(record, f"{column}_seen", value)
            record.uncertain[column] = (text, ())

    def _nearest_label(self, text: str, column: str, level1: str | None) -> tuple[tuple[str, float], ...]:
        """Among the labels this row can have (the 二级 children of its 一级, or the 一级 labels), the one
        a damaged label ("可持结标") is clearly closest to; () when none stands out."""
        if column == "level2" and level1 is not None:
            names = self.catalogue.level2_names(level1)
        elif column == "level1":
            names = self.catalogue.level1_names()
        else:
            return ()
        key = label_key(text).removesuffix("指标")
        scored = sorted(((fuzz.ratio(key, name.removesuffix("指标")) / 100, name) for name in names), reverse=True)
        if not scored or scored[0][0] < 0.4 or (len(scored) > 1 and scored[0][0] - scored[1][0] < 0.2):
            return ()
        return tuple((name, round(score, 2)) for score, name in scored[:3])

    def _repair_polluted(self, record: _IndicatorRow) -> None:
        """A value cell holding repeated header text ("实际完成值 分值 得分 … 完成") keeps its last value."""
        noise = self.profile.header_noise
        for name in ("target", "actual", "deviation", "weight", "score"):
            value = record.values.get(name, MISSING)
            raw = value.raw or ""
            key = label_key(raw)
            hits = sum(1 for word in noise if word in key)
            if hits < 2:
                continue
            tokens = [t for t in re.split(r"\s+", raw.strip()) if t]
            last = tokens[-1] if tokens else ""
            if last and not any(word in label_key(last) for word in noise):
                record.values[name] = replace(value, text=clean_cell_text(last), confidence=min(value.confidence, 0.6))
                record.notes.append(f"{name}: cell also held repeated header text; kept its last value {last!r}")

    def _join_broken_rows(self, table: Table, records: list[_IndicatorRow], issues: list[Issue]) -> list[_IndicatorRow]:
        """Join a row the page break cut in two: one side has the text, the values are on either side."""
        joined: list[_IndicatorRow] = []
        for record in records:
            previous = joined[-1] if joined else None
            crosses = previous is not None and previous.pages[-1] != record.pages[0]
            if previous is not None and crosses and self._is_continuation(previous, record):
                self._merge_into(previous, record)
                left = previous.values["name"].text or ""
                issues.append(Issue("row_joined_across_pages",
                                    f"row split by the page break after page {previous.pages[0]} joined: {left[:40]}",
                                    ""))
                continue
            joined.append(record)
        return joined

    @staticmethod
    def _is_continuation(previous: _IndicatorRow, record: _IndicatorRow) -> bool:
        if not record.has_values() and record.has_text():
            return True
        return not previous.has_values() and previous.has_text() and record.has_values()

    def _merge_into(self, target: _IndicatorRow, part: _IndicatorRow) -> None:
        for name in INDICATOR_FIELDS:
            if name in ("level1", "level2"):
                continue
            a, b = target.values.get(name, MISSING), part.values.get(name, MISSING)
            target.values[name] = _join_values([a, b]) if a.text or b.text else a
        for level in ("level1", "level2"):
            if getattr(target, f"{level}_label") is None and getattr(part, f"{level}_label") is not None:
                setattr(target, f"{level}_label", getattr(part, f"{level}_label"))
                setattr(target, f"{level}_seen", getattr(part, f"{level}_seen"))
        for level, doubt in part.uncertain.items():
            target.uncertain.setdefault(level, doubt)
        target.rows.extend(part.rows)
        target.pages.extend(p for p in part.pages if p not in target.pages)
        target.notes.extend(part.notes)
        if target.values.get("name", MISSING).text and part.values.get("name", MISSING).text:
            target.notes.append("joined across a page break")

    def _decide_levels(self, table: Table, records: list[_IndicatorRow], flags: list[Flag]) -> list[Indicator]:
        catalogue = self.catalogue
        pages = [frozenset(r.pages) for r in records]
        content: list[dict[str, float]] = []
        level2_labels = {r.level2_label for r in records if r.level2_label}
        for r in records:
            evidence = catalogue.content_evidence(r.values["name"].text or "", r.values["target"].text,
                                                  r.values["actual"].text)
            content.append(_likelihoods(evidence, level2_labels, r.values["name"].text or ""))
        level2 = infer_levels([r.level2_label for r in records], content, pages)
        # 一级 follows from 二级 where the hierarchy knows it; elsewhere from its own printed labels.
        level1_observed: list[str | None] = []
        for r, d2 in zip(records, level2, strict=True):
            parent = catalogue.level1_of(d2.label) if d2.label else None
            level1_observed.append(r.level1_label or (parent if d2.observed else None))
        level1 = infer_levels(level1_observed, None, pages)

        indicators: list[Indicator] = []
        for i, (r, d1, d2) in enumerate(zip(records, level1, level2, strict=True)):
            values = dict(r.values)
            parent = catalogue.level1_of(d2.label) if d2.label else None
            l1_label, l1_p = d1.label, d1.probability
            if parent is not None:
                if r.level1_label is not None and r.level1_label != parent:
                    message = f"一级 printed as {r.level1_label} but 二级 {d2.label} belongs to {parent}"
                    children = tuple((c, 0.5) for c in catalogue.level2_names(r.level1_label))
                    flags.append(Flag(f"indicators[{i}].level1", "level_conflict", message, 0.3,
                                      ((parent, 0.5), (r.level1_label, 0.5))))
                    flags.append(Flag(f"indicators[{i}].level2", "level_conflict", message, 0.3, children))
                # 一级 is as sure as the 二级 candidates that share its parent, together.
                l1_label = parent
                l1_p = sum(p for c, p in d2.candidates if catalogue.level1_of(c) == parent) or d2.probability
            # An inferred label is shown where its row is (its own cell is elsewhere or unprinted).
            row_place = replace(MISSING, page=values["name"].page, bbox=values["name"].bbox)
            seen1 = r.level1_seen if d1.observed else row_place
            seen2 = r.level2_seen if d2.observed else row_place
            values["level1"] = replace(seen1, text=l1_label) if l1_label else MISSING
            values["level2"] = replace(seen2, text=d2.label) if d2.label else MISSING
            for level, decision, p in (("level2", d2, d2.probability), ("level1", d1, l1_p)):
                if decision.label is None:
                    flags.append(Flag(f"indicators[{i}].{level}", f"{level}_missing",
                                      f"no {'二级' if level == 'level2' else '一级'} label found for this row", 0.0))
                elif p < LEVEL_ACCEPT:
                    label = values[level].text or ""
                    candidates = decision.candidates if level == "level2" else tuple(
                        (catalogue.level1_of(c) or c, s) for c, s in d2.candidates)
                    flags.append(Flag(f"indicators[{i}].{level}", f"{level}_ambiguous",
                                      f"the merged {'二级' if level == 'level2' else '一级'} cell does not say whether "
                                      f"this row belongs to {label} or a neighbouring block", p, candidates))
            for level, (printed, candidates) in r.uncertain.items():
                if candidates:
                    flags.append(Flag(f"indicators[{i}].{level}", "label_uncertain",
                                      f"the label reads {printed!r}; the nearest known label is {candidates[0][0]}",
                                      candidates[0][1], candidates))
                else:
                    flags.append(Flag(f"indicators[{i}].{level}", "label_unknown",
                                      f"the label reads {printed!r}, which is no known "
                                      f"{'一级' if level == 'level1' else '二级'} label", 0.5))
            for note in r.notes:
                if "repeated header" in note:
                    field_name = note.split(":", 1)[0]
                    flags.append(Flag(f"indicators[{i}].{field_name}", "cell_polluted", note, 0.6))
            indicators.append(Indicator(fields=values))
        return indicators

    # -- total

    def _read_total(self, table: Table, header: _Row, row: _Row) -> dict[str, Value]:
        columns = self._header_columns(header, self.profile.indicator_columns)
        numbers = [c for c in row.cells if looks_like_score(c.text) or re.fullmatch(r"[0-9.]+", to_ascii(c.text))]
        total = {"weight": MISSING, "score": MISSING}
        if table.kind is not SourceKind.TEXT_DUMP and "weight" in columns and "score" in columns:
            for cell in numbers:
                for name in ("weight", "score"):
                    if _overlap(cell, columns[name]):
                        total[name] = _value(cell)
        if total["weight"].text is None and total["score"].text is None:
            if len(numbers) >= 2:
                total["weight"], total["score"] = _value(numbers[0]), _value(numbers[1])
            elif len(numbers) == 1:
                total["weight"] = _value(numbers[0])
        return total


def _blank(cell: Cell) -> bool:
    """Empty, or only a speck OCR read as a letter or a dot ("i", "·"): labels are Chinese."""
    return not has_cjk(cell.text)


def _label_of(record: _IndicatorRow, column: str) -> tuple[str, Value] | None:
    label: str | None = getattr(record, f"{column}_label")
    return (label, getattr(record, f"{column}_seen")) if label else None


def _candidates(match: object) -> tuple[tuple[str, float], ...]:
    """A doubtful catalogue match's candidates (label, score), best first; () when it had none."""
    if getattr(match, "decision", None) != "review":
        return ()
    return tuple((str(c), float(score)) for c, score in getattr(match, "candidates", ()))


def _accepted(match: object) -> str | None:
    """The canonical label of a catalogue match that was accepted, else None."""
    if getattr(match, "decision", None) == "accept":
        canonical = getattr(match, "canonical", None)
        return str(canonical) if canonical else None
    return None


def _likelihoods(evidence: dict[str, float], labels: set[str], name: str) -> dict[str, float]:
    """Content evidence (label -> strength 0..1) as likelihoods over the labels printed in this table."""
    likelihood: dict[str, float] = {}
    strongest = max(evidence.values(), default=0.0)
    if strongest > 0:
        likelihood = {label: 0.2 + 0.8 * evidence.get(label, 0.0) / strongest for label in labels}
    # Rows of a satisfaction block speak of satisfaction (满意); one that does not is rarely in it.
    for label in labels:
        if "满意" in label and "满意" not in name:
            likelihood[label] = min(likelihood.get(label, 1.0), 0.2)
    return likelihood


def extract_forms(table: Table, catalogue: LabelCatalogue, profile: FormProfile | None = None) -> Extraction:
    return FormReader(profile or FormProfile.load(), catalogue).extract(table)
