"""Reviewers' decisions applied to an extracted document.

Decisions are stored by (document hash, field path) and applied on top of the raw extraction every time
outputs are written, so reprocessing a document never loses them. ``accept`` keeps the value the reviewer
saw, ``correct`` replaces it, ``reject`` empties it (rejecting the document-level item ``forms`` of a
failed or non-form document drops its forms). A value a person decided is certain (confidence 1). The
forms are then validated again, and a form with nothing left open becomes ``clean``. Field paths, not
rows, are decided, so indices never shift under a decision.

A rerun that now reads something else than what the reviewer saw does not change the outcome: the
decision wins and the disagreement is logged once in the audit trail (:func:`log_disagreements`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from pipeline.datamodel import (
    FUND_COLS,
    FUND_ROWS,
    GOAL_FIELDS,
    HEADER_FIELDS,
    INDICATOR_FIELDS,
    TOTAL_FIELDS,
    CatalogueMatch,
    DocumentResult,
    Flag,
    Form,
    Indicator,
    Issue,
    Status,
    Value,
)
from pipeline.quantity import format_decimal, parse_number, parse_percent
from pipeline.store import Decision, StateStore
from pipeline.validate import validate_form

DECISIONS = ("accept", "correct", "reject")
DISAGREEMENT = "disagreement"
DOCUMENT_REVIEWED = "document_reviewed"  # issue code on a failed document whose item was decided
_FORM_PATH = re.compile(r"^forms\[(\d+)\](?:\.(.+))?$")
_INDICATOR_PATH = re.compile(r"^indicators\[(\d+)\]\.(\w+)$")
_MONEY = ("initial_budget", "annual_budget", "executed")


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A stored decision whose old value no longer matches what the extraction now reads."""

    decision: Decision
    now_reads: str | None

    @property
    def note(self) -> str:
        return (f"the extraction now reads {self.now_reads or '(empty)'!r} where the reviewer saw "
                f"{self.decision.old_value or '(empty)'!r}; the stored {self.decision.decision} "
                f"({decided_value(self.decision) or '(empty)'!r}) is kept")


def split_path(path: str) -> tuple[int, str | None] | None:
    """``forms[1].indicators[3].name`` -> (1, 'indicators[3].name'); ``forms`` -> (-1, None)."""
    if path == "forms":
        return -1, None
    match = _FORM_PATH.match(path)
    if not match:
        return None
    return int(match.group(1)), match.group(2)


def field_kind(field: str) -> str | None:
    """What a form-relative field holds: ``catalogue``, ``money``, ``number``, ``percent``, ``year`` or
    ``text``; None for a path that is no single value (a missing section such as ``indicators``)."""
    row = _INDICATOR_PATH.match(field)
    if row:
        name = row.group(2)
        if name == "catalogue_id":
            return "catalogue"
        if name not in INDICATOR_FIELDS:
            return None
        return "number" if name in ("weight", "score") else "text"
    parts = field.split(".")
    if parts[0] == "funds" and len(parts) == 3 and parts[1] in FUND_ROWS and parts[2] in FUND_COLS:
        if parts[2] in _MONEY:
            return "money"
        return "percent" if parts[2] == "execution_rate" else "number"
    if parts[0] == "goals" and len(parts) == 2 and parts[1] in GOAL_FIELDS:
        return "text"
    if parts[0] == "total" and len(parts) == 2 and parts[1] in TOTAL_FIELDS:
        return "number"
    if len(parts) == 1 and parts[0] in HEADER_FIELDS:
        return "year" if parts[0] == "year" else "text"
    return None


def normalize_correction(kind: str, text: str) -> str:
    """A reviewer's corrected value in the form the outputs use (``10,580,000.00`` -> ``10580000.00``).

    Raises ValueError with a message for the reviewer when the text does not fit the field. Catalogue ids
    are checked elsewhere (they need the catalogue).
    """
    text = text.strip()
    if kind in ("money", "number", "year"):
        parsed = parse_number(text, money=kind == "money")
        # A repaired reading is a guess; a person's value must be unambiguous.
        if parsed is None or parsed.repaired:
            raise ValueError(f"{text!r} is not a number (write it like 12.5 or 10580000.00)")
        if kind == "year" and (parsed.value != parsed.value.to_integral_value() or not 1900 <= parsed.value <= 2200):
            raise ValueError(f"{text!r} is not a year")
        return format_decimal(parsed.value)
    if kind == "percent":
        percent = parse_percent(text, expect_percent=False)
        if percent is None or percent.repaired:
            raise ValueError(f"{text!r} is not a percent (write it like 95% or 95.5%)")
        return f"{format_decimal(percent.value)}%"
    return text


def current_value(result: DocumentResult, path: str) -> str | None:
    """The value a field path shows in a result (what a reviewer saw in the queue's value column)."""
    parts = split_path(path)
    if parts is None:
        return None
    index, field = parts
    if field is None or not 0 <= index < len(result.forms):
        return None
    return form_value(result.forms[index], field)


def form_value(form: Form, field: str) -> str | None:
    """The value a form-relative field path shows (a catalogue id for ``indicators[k].catalogue_id``)."""
    if field.endswith(".catalogue_id"):
        indicator = _indicator(form, field)
        return indicator.catalogue.entry_id if indicator and indicator.catalogue else None
    try:
        return form.value_at(field).text
    except KeyError:
        return None


def decided_value(decision: Decision) -> str | None:
    """What a decision puts in its field: the correction, nothing (reject), or the value accepted."""
    if decision.decision == "reject":
        return None
    if decision.decision == "correct":
        return decision.new_value or None
    # accept: new_value holds what was accepted when it is not the value shown (a catalogue candidate)
    return (decision.new_value if decision.new_value is not None else decision.old_value) or None


def _indicator(form: Form, field: str) -> Indicator | None:
    match = re.match(r"^indicators\[(\d+)\]", field)
    if not match or int(match.group(1)) >= len(form.indicators):
        return None
    return form.indicators[int(match.group(1))]


@lru_cache(maxsize=4)
def _catalogue_names(path: str | None) -> dict[str, str]:
    from pipeline.catalogue import Catalogue

    return {entry.id: entry.name for entry in Catalogue.load(path).entries}


def catalogue_name(entry_id: str) -> str | None:
    """The canonical name of a catalogue id (the catalogue the runs use)."""
    from pipeline.config import Settings

    return _catalogue_names(Settings.from_env().catalogue).get(entry_id)


def _catalogue_match(indicator: Indicator, entry_id: str | None) -> CatalogueMatch:
    if not entry_id:
        return CatalogueMatch("none")
    known = indicator.catalogue
    names = {i: n for i, n, _ in known.candidates} if known else {}
    if known and known.entry_id and known.canonical_name:
        names[known.entry_id] = known.canonical_name
    name = names.get(entry_id) or catalogue_name(entry_id)
    return CatalogueMatch("accept", entry_id=entry_id, canonical_name=name, score=1.0)


def _set_value(form: Form, field: str, text: str | None) -> Form:
    """A copy of the form with one field's text replaced (a reviewer's value is certain: confidence 1)."""
    kind = field_kind(field)
    if kind is None:
        raise KeyError(field)
    row = _INDICATOR_PATH.match(field)
    if row:
        index, name = int(row.group(1)), row.group(2)
        indicators = list(form.indicators)
        indicator = indicators[index]
        if kind == "catalogue":
            indicators[index] = replace(indicator, catalogue=_catalogue_match(indicator, text))
        else:
            fields = dict(indicator.fields)
            fields[name] = replace(fields.get(name, Value(None)), text=text, confidence=1.0)
            indicators[index] = replace(indicator, fields=fields)
        return replace(form, indicators=tuple(indicators))
    parts = field.split(".")
    if parts[0] == "funds":
        funds = {r: dict(c) for r, c in form.funds.items()}
        funds.setdefault(parts[1], {})
        funds[parts[1]][parts[2]] = replace(funds[parts[1]].get(parts[2], Value(None)), text=text, confidence=1.0)
        return replace(form, funds=funds)
    if parts[0] in ("goals", "total"):
        section = dict(getattr(form, parts[0]))
        section[parts[1]] = replace(section.get(parts[1], Value(None)), text=text, confidence=1.0)
        return replace(form, goals=section) if parts[0] == "goals" else replace(form, total=section)
    header = dict(form.header)
    header[parts[0]] = replace(header.get(parts[0], Value(None)), text=text, confidence=1.0)
    return replace(form, header=header)


def _revalidate(form: Form, decided: set[str], values: dict[str, str | None]) -> Form:
    """Rules run again on the decided values; what a person decided is not asked again.

    Validation flags are recomputed from the values; other flags (a value filled in from the totals
    included: the rules cannot tell it was filled) stay until someone decides them.
    """
    kept = tuple(f for f in form.flags if not f.reason.startswith("validation_failed:"))
    issues = tuple(i for i in form.issues if not i.code.startswith("validation_failed:"))
    checked = validate_form(replace(form, flags=kept, issues=issues))
    for field, text in values.items():
        if form_value(checked, field) != text:  # a rule filled in a value the reviewer emptied on purpose
            checked = _set_value(checked, field, text)
    seen: set[tuple[str, str, str]] = set()
    open_flags: list[Flag] = []
    for flag in checked.flags:
        key = (flag.field, flag.reason, flag.message)
        if flag.field in decided or _under_decided(flag, decided) or key in seen:
            continue
        seen.add(key)
        open_flags.append(flag)
    return replace(checked, flags=tuple(open_flags))


def _under_decided(flag: Flag, decided: set[str]) -> bool:
    return any(flag.field.startswith(d + ".") for d in decided)


def apply_stored_decisions(result: DocumentResult,
                           decisions: list[Decision]) -> tuple[DocumentResult, list[Disagreement]]:
    """The result with every stored decision applied; disagreements between a decision's old value and
    what is read now are returned (the decision still wins)."""
    mine = [d for d in decisions if d.doc_id == result.doc_id]
    if not mine:
        return result, []
    whole = next((d for d in mine if d.field == "forms"), None)
    if whole is not None:
        # The document-level item of a failed document: marked, so the queue need not ask it again.
        seen = Issue(DOCUMENT_REVIEWED, f"{whole.decision}ed by {whole.reviewer or 'a reviewer'}"
                     + (f": {whole.note}" if whole.note else ""))
        result = replace(result, issues=(*result.issues, seen))
        if whole.decision == "reject":
            return replace(result, forms=(), status=Status.FAILED,
                           error=result.error or "rejected by a reviewer: not a form"), []
    disagreements: list[Disagreement] = []
    decided: dict[int, set[str]] = {}
    values: dict[int, dict[str, str | None]] = {}
    for d in mine:
        parts = split_path(d.field)
        if parts is None:
            continue
        index, field = parts
        if field is None or not 0 <= index < len(result.forms):
            continue
        decided.setdefault(index, set()).add(field)
        if field_kind(field) is None or (d.decision == "accept" and d.old_value is None and d.new_value is None):
            continue  # a missing section acknowledged, or an accept that recorded nothing to keep
        now = current_value(result, d.field)
        target = decided_value(d)
        if d.old_value is not None and (now or "") not in (d.old_value, target or ""):
            disagreements.append(Disagreement(d, now))
        values.setdefault(index, {})[field] = target
    forms = list(result.forms)
    for index, fields in decided.items():
        form = forms[index]
        applied: dict[str, str | None] = {}
        for field, text in values.get(index, {}).items():
            try:
                form = _set_value(form, field, text)
            except (KeyError, IndexError):
                continue  # the path no longer exists in this extraction (fewer rows): nothing to set
            applied[field] = text
        forms[index] = _revalidate(form, fields, applied)
    status = Status.NEEDS_REVIEW if any(f.flags for f in forms) else Status.CLEAN
    if result.status is Status.FAILED:
        status = Status.FAILED
    return replace(result, forms=tuple(forms), status=status), disagreements


def log_disagreements(store: StateStore, result: DocumentResult) -> list[Disagreement]:
    """After a document was processed again: log each stored decision the new extraction disagrees with.

    The decision still wins (it is applied on export); each disagreement is logged once per decision,
    so rerunning the same document again adds nothing.
    """
    decisions = store.decisions(result.doc_id)
    if not decisions:
        return []
    _, found = apply_stored_decisions(result, decisions)
    if not found:
        return []
    logged = [row for row in store.decision_log(result.doc_id) if row["event"] == DISAGREEMENT]
    new: list[Disagreement] = []
    for item in found:
        d = item.decision
        if any(row["field"] == d.field and row["note"] == item.note and row["decided_at"] >= d.decided_at
               for row in logged):
            continue
        store.log_event(d, DISAGREEMENT, item.note)
        new.append(item)
    return new
