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

from pipeline.datamodel import (
    INDICATOR_FIELDS,
    MISSING,
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

    def tokenize(self, text: str) -> list[str]: ...


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
    """(first row, last row) of each form, by 项目名称 rows and the title lines just above them."""
    project = profile.header_fields["project_name"]
    anchors = [i for i, row in enumerate(rows) if _label_cell(row, project, prefix=True) is not None]
    if not anchors:
        anchors = [i for i, row in enumerate(rows) if _is_title_row(row, profile)]
    starts: list[int] = []
    previous_anchor = -1
    for anchor in anchors:
        start = anchor
        # Title, year and attachment lines directly above belong to the form.
        while start - 1 > previous_anchor and anchor - (start - 1) <= 4:
            above = rows[start - 1]
            if not above.cells or _is_title_row(above, profile) or _is_year_row(above) or above.joined.startswith("附件"):
                start -= 1
            else:
                break
        while start < anchor and not rows[start].cells:
            start += 1
        starts.append(start)
        previous_anchor = anchor
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
            best = max(columns.items(), key=lambda item: _overlap(cell, item[1]), default=None)
            if best is not None and _overlap(cell, best[1]) > 0:
                result.setdefault(best[0], []).append(cell)
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


def _header_columns(row: _Row, vocab: dict[str, Vocabulary]) -> dict[str, tuple[int, int]]:
    """Semantic column -> (first, last) grid column, from the header cells that name them."""
    found: dict[str, tuple[int, int]] = {}
    best_score: dict[str, float] = {}
    for cell in row.cells:
        for name, words in vocab.items():
            score = words.score(cell.text)
            if score > best_score.get(name, 0.0):
                # One header cell names one column: the best-scoring name wins.
                taken = [n for n, span in found.items() if span == (cell.col, cell.last_col)]
                if taken and best_score[taken[0]] >= score:
                    continue
                for n in taken:
                    del found[n]
                    del best_score[n]
                found[name] = (cell.col, cell.last_col)
                best_score[name] = score
    return found


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

    def has_values(self) -> bool:
        return any(not self.values.get(k, MISSING).empty for k in ("target", "actual", "weight", "score"))

    def has_text(self) -> bool:
        return any(self.values.get(k, MISSING).text for k in ("name", "deviation"))


class FormReader:
    """Reads forms from a Table with one profile and one catalogue."""

    def __init__(self, profile: FormProfile, catalogue: LabelCatalogue) -> None:
        self.profile = profile
        self.catalogue = catalogue

    # -- entry point

    def extract(self, table: Table) -> Extraction:
        rows = _rows(table)
        spans = _segment(rows, self.profile)
        issues: list[Issue] = []
        if not spans:
            return Extraction((), (Issue("not_a_form", "no 绩效自评表 found: no 项目名称 row and no form title"),))
        covered: set[int] = set()
        forms: list[Form] = []
        for index, (first, last) in enumerate(spans):
            form, used = self._read_form(table, rows, first, last, index)
            forms.append(form)
            covered.update(used)
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
        goals_at = find(lambda r: self._count_matches(r, profile.goals_columns) >= 1 and not self._is_indicator_header(r)
                        and (funds_at is None or r.index != region[funds_at].index))
        if goals_at is None:
            goals_at = find(lambda r: _label_cell(r, profile.goals_labels) is not None and not self._is_indicator_header(r))
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

        funds = {name: {} for name in ("total", "fiscal_appropriation", "carryover", "other")}
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

    def _count_matches(self, row: _Row, vocab: dict[str, Vocabulary]) -> int:
        return len(_header_columns(row, vocab))

    def _is_indicator_header(self, row: _Row) -> bool:
        found = _header_columns(row, self.profile.indicator_columns)
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
                    if header[name].text is not None or not vocab.matches(cell.text, prefix=True):
                        continue
                    if vocab.score(cell.text) >= 0.9:
                        value_cell = self._next_value_cell(row.cells, position)
                        header[name] = _value(value_cell) if value_cell else MISSING
                    else:  # "项目名称：XXX" in one cell
                        key = label_key(cell.text)
                        variant = next(label_key(v) for v in vocab.variants if key.startswith(label_key(v)))
                        rest = key[len(variant):].lstrip(":")
                        header[name] = replace(_value(cell), text=rest or None)
        for name in ("project_name", "department", "implementing_unit", "year"):
            if header[name].text is None:
                flags.append(Flag(name, "missing_value", f"{name} was not found on the form", 0.0))
        return header, flags

    def _next_value_cell(self, cells: list[Cell], position: int) -> Cell | None:
        for cell in cells[position + 1 :]:
            if any(v.matches(cell.text) for v in self.profile.header_fields.values()):
                return None
            return cell
        return None

    # -- funds

    def _read_funds(self, table: Table, rows: list[_Row]) -> dict[str, dict[str, Value]]:
        profile = self.profile
        columns = _header_columns(rows[0], profile.funds_columns)
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
        columns = _header_columns(rows[0], profile.goals_columns)
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
            return _accepted(catalogue.match_level1(text)) is not None or _accepted(catalogue.match_level2(text)) is not None

        def compat(name: str, text: str) -> float:
            label = is_label(text)
            if name in ("level1", "level2"):
                if label:
                    return 3.0
                return 1.0 if outer.matches(text) and name == "level1" else -2.0
            if name == "name":
                if label or outer.matches(text):
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

    def _read_indicators(self, table: Table, header: _Row, rows: list[_Row]) -> tuple[list[Indicator], list[Flag], list[Issue]]:
        profile = self.profile
        columns = _header_columns(header, profile.indicator_columns)
        geometric = table.kind is not SourceKind.TEXT_DUMP
        compat = self._indicator_compat()
        records: list[_IndicatorRow] = []
        issues: list[Issue] = []
        for row in rows:
            if not row.cells or self._is_indicator_header(row):
                continue
            cells = [c for c in row.cells if not (c.row_span > 2 and profile.indicator_outer.matches(c.text))]
            aligned = _align(cells, columns, geometric, compat)
            record = _IndicatorRow(rows=[row.index], pages=[row.page], values={})
            for name in INDICATOR_FIELDS:
                placed = aligned.get(name, [])
                if name in ("level1", "level2"):
                    continue
                # A label that landed in a value column of a dump row stays a value; labels are read below.
                record.values[name] = _join_values([_value(c) for c in placed])
            for column in ("level1", "level2"):
                for cell in aligned.get(column, []):
                    self._observe_label(record, cell, column)
            if geometric:
                # Merged label cells that started on a row above still label this row.
                for cell in table.covering(row.index):
                    for column in ("level1", "level2"):
                        if cell.row < row.index and column in columns and _overlap(cell, columns[column]):
                            self._observe_label(record, cell, column)
            self._repair_polluted(record)
            records.append(record)
        records = self._join_broken_rows(table, records, issues)
        flags: list[Flag] = []
        indicators = self._decide_levels(table, records, flags)
        return indicators, flags, issues

    def _observe_label(self, record: _IndicatorRow, cell: Cell, column: str) -> None:
        text = cell.text
        if not text.strip() or self.profile.indicator_outer.matches(text):
            return
        level1 = _accepted(self.catalogue.match_level1(text))
        level2 = _accepted(self.catalogue.match_level2(text))
        value = _value(cell)
        if level2 is not None and record.level2_label is None:
            record.level2_label, record.level2_seen = level2, value
        elif level1 is not None and record.level1_label is None:
            record.level1_label, record.level1_seen = level1, value
        elif level1 is None and level2 is None:
            # A label the catalogue does not know: keep it as printed, in the column it was found in.
            if column == "level1" and record.level1_label is None:
                record.level1_label, record.level1_seen = clean_cell_text(text), value
            elif record.level2_label is None:
                record.level2_label, record.level2_seen = clean_cell_text(text), value

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
        target.rows.extend(part.rows)
        target.pages.extend(p for p in part.pages if p not in target.pages)
        target.notes.extend(part.notes)
        name = target.values.get("name", MISSING)
        if name.text and part.values.get("name", MISSING).text:
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
                    flags.append(Flag(f"indicators[{i}].level1", "level_conflict",
                                      f"一级 printed as {r.level1_label} but 二级 {d2.label} belongs to {parent}",
                                      0.3, ((parent, 0.5), (r.level1_label, 0.5))))
                # 一级 is as sure as the 二级 candidates that share its parent, together.
                l1_label = parent
                l1_p = sum(p for c, p in d2.candidates if catalogue.level1_of(c) == parent) or d2.probability
            # An inferred label is shown where its row is (its own cell is elsewhere or unprinted).
            row_place = replace(MISSING, page=values["name"].page, bbox=values["name"].bbox)
            values["level1"] = replace(r.level1_seen if d1.observed else row_place, text=l1_label) if l1_label else MISSING
            values["level2"] = replace(r.level2_seen if d2.observed else row_place, text=d2.label) if d2.label else MISSING
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
            for note in r.notes:
                if "repeated header" in note:
                    field_name = note.split(":", 1)[0]
                    flags.append(Flag(f"indicators[{i}].{field_name}", "cell_polluted", note, 0.6))
            indicators.append(Indicator(fields=values))
        return indicators

    # -- total

    def _read_total(self, table: Table, header: _Row, row: _Row) -> dict[str, Value]:
        columns = _header_columns(header, self.profile.indicator_columns)
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
