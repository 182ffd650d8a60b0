"""Normalise a Form's values: exact decimals, percents, operators and units, catalogue ids.

Values keep their printed text; what changes is its form (``10,580,000.00`` -> ``10580000.00``) and
what the column's type lets us repair. Every repair and every doubtful value becomes a Flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Protocol

from pipeline.config import models_dir
from pipeline.datamodel import MISSING, CatalogueMatch, Flag, Form, Indicator, Value
from pipeline.quantity import (
    format_decimal,
    has_inner_stop,
    is_dash,
    parse_number,
    parse_percent,
    parse_quantity,
    strip_specks,
    strip_stray_marks,
)
from pipeline.text import clean_cell_text

MONEY_COLUMNS = ("initial_budget", "annual_budget", "executed")


class IndicatorCatalogue(Protocol):
    def match_indicator(self, name: str, level2: str | None = None) -> CatalogueMatch: ...


def _with_text(value: Value, text: str | None) -> Value:
    """``replace(value, text=text)``; the value itself when the text is already that (most values: a
    dataclass replace costs more than the check)."""
    return value if text == value.text else replace(value, text=text)


def _number(value: Value, path: str, flags: list[Flag], *, money: bool) -> Value:
    if value.text is None:
        return value
    if is_dash(value.text):
        return replace(value, text=None)
    parsed = parse_number(value.text, money=money)
    if parsed is None:
        flags.append(Flag(path, "not_a_number", f"expected a number, read {value.text!r}", min(value.confidence, 0.5)))
        return value
    if parsed.repaired:
        flags.append(Flag(path, "ocr_repaired", parsed.note, min(value.confidence, 0.7)))
    return _with_text(value, format_decimal(parsed.value))


def _percent(value: Value, path: str, flags: list[Flag]) -> Value:
    if value.text is None:
        return value
    if is_dash(value.text):
        return replace(value, text=None)
    parsed = parse_percent(value.text)
    if parsed is None:
        flags.append(Flag(path, "not_a_percent", f"expected a percent, read {value.text!r}",
                          min(value.confidence, 0.5)))
        return value
    if parsed.repaired:
        flags.append(Flag(path, "ocr_repaired", parsed.note, min(value.confidence, 0.7)))
    return _with_text(value, f"{format_decimal(parsed.value)}%")


def _text(value: Value) -> Value:
    if value.text is None:
        return value
    cleaned = clean_cell_text(value.text)
    return _with_text(value, cleaned or None)


def normalize_form(form: Form, catalogue: IndicatorCatalogue, low_confidence: float = 0.9) -> Form:
    """Typed, repaired values and catalogue matches; flags for repairs and for low OCR confidence."""
    flags: list[Flag] = list(form.flags)
    header = {name: _text(value) for name, value in form.header.items()}
    for name in ("project_name", "department", "implementing_unit"):
        if name in header:
            header[name] = _stray_marks(header[name], name, flags, one_phrase=True)
    if header.get("year", MISSING).text:
        year = parse_number(header["year"].text)
        header["year"] = replace(header["year"], text=format_decimal(year.value) if year else header["year"].text)

    funds: dict[str, dict[str, Value]] = {}
    for row, cols in form.funds.items():
        out: dict[str, Value] = {}
        for col, value in cols.items():
            path = f"funds.{row}.{col}"
            if col in MONEY_COLUMNS:
                out[col] = _number(value, path, flags, money=True)
            elif col == "execution_rate":
                out[col] = _percent(value, path, flags)
            else:
                out[col] = _number(value, path, flags, money=False)
        funds[row] = out

    goals = {name: _stray_marks(_text(value), f"goals.{name}", flags) for name, value in form.goals.items()}
    total = {name: _number(value, f"total.{name}", flags, money=False) for name, value in form.total.items()}

    indicators: list[Indicator] = []
    for i, indicator in enumerate(form.indicators):
        fields = {name: _text(value) for name, value in indicator.fields.items()}
        for name in ("name", "target", "actual", "deviation"):
            if name in fields:
                fields[name] = _stray_marks(fields[name], f"indicators[{i}].{name}", flags,
                                            one_phrase=name != "deviation")
        for name in ("weight", "score"):
            fields[name] = _number(fields.get(name, MISSING), f"indicators[{i}].{name}", flags, money=False)
        for name in ("target", "actual", "deviation"):
            value = fields.get(name, MISSING)
            if value.text is None:
                continue
            if name != "deviation" and is_dash(value.text) and value.text.strip() != "无":
                fields[name] = replace(value, text=None)
                continue
            core = strip_specks(value.text)
            if core is not None:
                fields[name] = replace(value, text=core)
                flags.append(Flag(f"indicators[{i}].{name}", "ocr_repaired",
                                  f"read as {value.text!r}; specks around the value removed",
                                  min(value.confidence, 0.7)))
        name_text = fields.get("name", MISSING).text
        match = catalogue.match_indicator(name_text, fields.get("level2", MISSING).text) if name_text else None
        if match is not None and match.decision == "review":
            flags.append(Flag(f"indicators[{i}].catalogue_id", "catalogue_ambiguous",
                              f"{name_text!r} is close to several catalogue indicators", match.score,
                              tuple((f"{eid} {cname}", s) for eid, cname, s in match.candidates)))
        indicators.append(Indicator(fields=fields, catalogue=match))

    normalized = replace(form, header=header, funds=funds, goals=goals, indicators=tuple(indicators), total=total)
    flags.extend(_confidence_flags(normalized, low_confidence, {f.field for f in flags}))
    flags.extend(_script_flags(normalized, {f.field for f in flags}))
    return replace(normalized, flags=tuple(flags))


# OCR's misreads of 无 as a lone character (a value cell is never just 尤).
_LONE_MISREADS = {"尤": "无"}
READ_TEXT_CONFIDENCE = 1.0  # text dumps and PDF text layers: their text is what was printed


def _stray_marks(value: Value, path: str, flags: list[Flag], *, one_phrase: bool = False) -> Value:
    """Punctuation a speck put into OCR text is taken out (and flagged); a full stop inside a name or a
    value (``one_phrase``) is flagged."""
    if value.text is None or value.confidence >= READ_TEXT_CONFIDENCE:
        return value
    if value.text in _LONE_MISREADS:
        repaired = _LONE_MISREADS[value.text]
        flags.append(Flag(path, "ocr_repaired", f"read as {value.text!r}; a lone {repaired!r} misread",
                          min(value.confidence, 0.7)))
        return replace(value, text=repaired)
    stripped = strip_stray_marks(value.text)
    if stripped is not None:
        flags.append(Flag(path, "stray_punctuation", f"read as {value.text!r}; punctuation from a speck removed",
                          min(value.confidence, 0.7)))
        value = replace(value, text=stripped)
    elif one_phrase and value.text is not None and has_inner_stop(value.text):
        flags.append(Flag(path, "stray_punctuation", f"a full stop inside {value.text!r}: a speck?",
                          min(value.confidence, 0.7)))
    return value


@lru_cache(maxsize=1)
def traditional_only() -> frozenset[str]:
    """Traditional characters simplified Chinese never prints (``models/dictionaries/traditional_only.txt``)."""
    path = models_dir() / "dictionaries" / "traditional_only.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset("".join(line.strip() for line in lines if not line.startswith("#")))


def _script_flags(form: Form, already: set[str]) -> list[Flag]:
    """OCR text holding a traditional character: these forms are printed in simplified Chinese, so it is a
    misread the recogniser was sure of (贴 read as 貼)."""
    traditional = traditional_only()
    flags: list[Flag] = []
    for path, value in _read_values(form):
        if value.text is None or value.confidence >= READ_TEXT_CONFIDENCE or path in already:
            continue
        found = [ch for ch in value.text if ch in traditional]
        if found:
            flags.append(Flag(path, "traditional_character", f"{value.text!r} holds {''.join(found)}, a traditional "
                              "character these forms do not print: a misread?", min(value.confidence, 0.7)))
    return flags


def _read_values(form: Form) -> Iterator[tuple[str, Value]]:
    """Every value read from the page, with its field path (the title is the form's, not a value)."""
    yield from ((name, value) for name, value in form.header.items() if name != "title")
    for row, cols in form.funds.items():
        yield from ((f"funds.{row}.{col}", value) for col, value in cols.items())
    yield from ((f"goals.{name}", value) for name, value in form.goals.items())
    for i, indicator in enumerate(form.indicators):
        yield from ((f"indicators[{i}].{name}", value) for name, value in indicator.fields.items())
    yield from ((f"total.{name}", value) for name, value in form.total.items())


def _confidence_flags(form: Form, threshold: float, already: set[str]) -> list[Flag]:
    return [Flag(path, "low_ocr_confidence", f"OCR is unsure of {value.text!r} (confidence {value.confidence:.2f})",
                 value.confidence)
            for path, value in _read_values(form)
            if value.text is not None and value.confidence < threshold and path not in already]


def quantity_fields(value: Value) -> dict[str, str | None]:
    """``target_op`` / ``target_value`` / ``target_unit`` style parts of a printed target or actual."""
    quantity = parse_quantity(value.text)
    if quantity is None:
        return {"op": None, "value": None, "unit": None}
    return {
        "op": quantity.op,
        "value": format_decimal(quantity.value) if quantity.value is not None else None,
        "unit": quantity.unit,
    }
