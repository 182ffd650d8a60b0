"""Indicator-row scoring shared by every contender, and the img2table adapter (tables -> indicator rows).

Normalisation and row alignment are evaluate.py's own (``/work/shared/tools/evaluate.py``, loaded from
file): ``same`` compares after NFKC, whitespace removal, operator/quote unification and numbers as numbers;
``align`` pairs truth and extracted rows by name similarity in order. A row is *exact* when name, target,
actual, weight and score are all ``same`` (evaluate.py's ``rows_exact``).

The img2table adapter's rules (img2table returns each table as rows of cell texts, a merged cell's text
repeated in every grid position it covers):

1. Cell text: literal ``None`` tokens (img2table joins OCR words with no text as "None") are dropped;
   nothing else is repaired.
2. Header row: the first row with a cell reading 三级指标 (whitespace removed; a one-character OCR slip is
   allowed, an exact match preferred). Its columns: name = 三级指标; target = the first cell with 指标值
   but not 实际 (年度指标值, 预期指标值); actual = 实际完成值 / 实际值 / 完成值;
   weight = 分值 / 权重; score = 得分. Each is the first column of its run of repeated header text.
3. Indicator rows: every row below the header (in that table, and in following tables with the same number
   of columns and no header of their own: a form continued on the next page) whose name cell is not empty,
   is not a header cell again and is not a 总分/合计 row.
4. No repairs: a row split by a page break stays two rows; vertical merged cells are taken as img2table
   repeats them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.config import shared_dir

EVALUATE = shared_dir() / "tools" / "evaluate.py"
ROW_KEYS = ("name", "target", "actual", "weight", "score")
NONE_TOKEN = re.compile(r"(?<![A-Za-z])None(?![A-Za-z])")


@cache
def evaluate_module(path: str = str(EVALUATE)) -> ModuleType:
    """evaluate.py loaded from its file (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("formrescue_evaluate", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("formrescue_evaluate", module)
    spec.loader.exec_module(module)
    return module


@dataclass
class RowScore:
    """Indicator rows of some documents against their truth."""

    truth_rows: int = 0
    matched: int = 0  # aligned by name (evaluate.py's align)
    exact: int = 0  # name, target, actual, weight and score all right
    fields: int = 0  # truth rows x 5
    fields_right: int = 0
    extra: int = 0  # extracted rows with no truth row

    def add(self, other: RowScore) -> None:
        for name in ("truth_rows", "matched", "exact", "fields", "fields_right", "extra"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def exact_rate(self) -> float:
        return self.exact / self.truth_rows if self.truth_rows else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth_rows if self.truth_rows else 0.0

    @property
    def field_accuracy(self) -> float:
        return self.fields_right / self.fields if self.fields else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"truth_rows": self.truth_rows, "matched": self.matched, "exact": self.exact, "fields": self.fields,
                "fields_right": self.fields_right, "extra": self.extra, "exact_rate": self.exact_rate,
                "recall": self.recall, "field_accuracy": self.field_accuracy}


def score_rows(truth: Sequence[dict[str, Any]], got: Sequence[dict[str, Any]]) -> RowScore:
    ev = evaluate_module()
    pairs = dict(ev.align(list(truth), list(got)))
    score = RowScore(truth_rows=len(truth), matched=len(pairs), extra=len(got) - len(pairs))
    for i, t in enumerate(truth):
        g = got[pairs[i]] if i in pairs else None
        keys = [k for k in ROW_KEYS if k in t]
        right = [bool(g) and ev.same(t.get(k), g.get(k)) for k in keys]
        score.fields += len(keys)
        score.fields_right += sum(right)
        score.exact += bool(g) and all(right)
    return score


def truth_indicators(truth_path: Path) -> list[dict[str, Any]]:
    data = json.loads(truth_path.read_text(encoding="utf-8"))
    forms = data.get("forms", [data])
    return [ind for form in forms for ind in form.get("indicators") or []]


def truth_stem(truth_path: Path) -> str:
    name = truth_path.name
    for suffix in (".expected.json", ".truth.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def forms_indicators(forms_jsonl: Path) -> dict[str, list[dict[str, Any]]]:
    """Extracted indicator rows per source file name, forms in document order (from formrescue's output)."""
    out: dict[str, list[tuple[int, list[dict[str, Any]]]]] = {}
    if forms_jsonl.exists():
        for line in forms_jsonl.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out.setdefault(Path(str(record.get("source"))).name, []).append(
                    (int(record.get("form_index", 0)), list(record.get("indicators") or [])))
    return {name: [ind for _, inds in sorted(forms, key=lambda f: f[0]) for ind in inds]
            for name, forms in out.items()}


# ------------------------------------------------------------------------------------------- img2table


HEADER_KEYS: dict[str, tuple[str, ...]] = {
    "name": ("三级指标",),
    "target": ("年度指标值", "预期指标值", "指标值"),
    "actual": ("实际完成值", "实际值", "完成值"),
    "weight": ("分值", "权重"),
    "score": ("得分",),
}
TOTAL_LABELS = ("总分", "合计", "总计")


def clean_cell(text: str | None) -> str:
    return re.sub(r"\s+", " ", NONE_TOKEN.sub(" ", text or "")).strip()


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", clean_cell(text))


def _near(text: str, key: str) -> bool:
    """``key`` in ``text``, allowing one wrong character (Tesseract misreads one glyph of a header often)."""
    if key in text:
        return True
    n = len(key)
    if n < 3:
        return False
    for start in range(0, max(0, len(text) - n) + 1):
        window = text[start:start + n]
        if len(window) == n and sum(a != b for a, b in zip(window, key, strict=True)) <= 1:
            return True
    return False


def header_columns(row: Sequence[str]) -> dict[str, int] | None:
    """Column of each indicator field in a header row, or None when the row is not the indicator header."""
    cells = [_squash(c) for c in row]
    columns: dict[str, int] = {}
    for field, keys in HEADER_KEYS.items():
        for fuzzy in (False, True):  # an exact header first: 一级指标 is one character from 三级指标
            for col, text in enumerate(cells):
                if (field == "target" and "实际" in text) or (field == "name" and ("一级" in text or "二级" in text)):
                    continue
                if any(_near(text, k) if fuzzy else k in text for k in keys):
                    columns[field] = col
                    break
            if field in columns:
                break
    if "name" not in columns:
        return None
    return columns


def _is_header_again(text: str) -> bool:
    return any(_near(text, k) for keys in HEADER_KEYS.values() for k in keys if len(k) >= 3)


def img2table_rows(tables: Iterable[Sequence[Sequence[str]]]) -> list[dict[str, str]]:
    """Indicator rows (name/target/actual/weight/score) from img2table's tables of one document."""
    rows: list[dict[str, str]] = []
    columns: dict[str, int] | None = None
    width = 0
    for table in tables:
        in_header_table = False
        for row in table:
            found = header_columns(row)
            if found is not None:
                columns, width, in_header_table = found, len(row), True
                continue
            if columns is None:
                continue
            if not in_header_table and len(row) != width:
                break  # another table (not this form's continuation)
            name = clean_cell(row[columns["name"]]) if columns["name"] < len(row) else ""
            squashed = _squash(name)
            if not squashed or _is_header_again(squashed) or any(label in squashed for label in TOTAL_LABELS):
                continue
            if any(label in _squash(" ".join(row)) for label in ("总分",)):
                continue
            record = {"name": name}
            for field in ("target", "actual", "weight", "score"):
                col = columns.get(field)
                record[field] = clean_cell(row[col]) if col is not None and col < len(row) else ""
            rows.append(record)
        if not in_header_table and columns is not None and table and len(table[0]) != width:
            columns = None  # a table of another shape ends the form
    return rows
