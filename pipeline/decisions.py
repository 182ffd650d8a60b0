"""Reviewers' decisions applied to an extracted document.

Decisions are stored by (document hash, field path) and applied on top of the raw extraction every time
outputs are written, so reprocessing a document never loses them. ``accept`` keeps the value,
``correct`` replaces it, ``reject`` empties it (rejecting the document-level item ``forms`` of a failed
or non-form document drops its forms). The forms are then validated again, and a form with nothing left
open becomes ``clean``. Field paths, not rows, are decided, so indices never shift under a decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pipeline.datamodel import CatalogueMatch, DocumentResult, Flag, Form, Indicator, Status, Value
from pipeline.store import Decision
from pipeline.validate import validate_form

DECISIONS = ("accept", "correct", "reject")
_FORM_PATH = re.compile(r"^forms\[(\d+)\](?:\.(.+))?$")


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A stored decision whose old value no longer matches what the extraction now reads."""

    decision: Decision
    now_reads: str | None


def split_path(path: str) -> tuple[int, str | None] | None:
    """``forms[1].indicators[3].name`` -> (1, 'indicators[3].name'); ``forms`` -> (-1, None)."""
    if path == "forms":
        return -1, None
    match = _FORM_PATH.match(path)
    if not match:
        return None
    return int(match.group(1)), match.group(2)


def current_value(result: DocumentResult, path: str) -> str | None:
    """The value a field path shows in a result (what a reviewer saw in the queue's value column)."""
    parts = split_path(path)
    if parts is None or parts[0] < 0 or parts[0] >= len(result.forms) or parts[1] is None:
        return None
    form = result.forms[parts[0]]
    if parts[1].endswith(".catalogue_id"):
        indicator = _indicator(form, parts[1])
        return indicator.catalogue.entry_id if indicator and indicator.catalogue else None
    try:
        return form.value_at(parts[1]).text
    except KeyError:
        return None


def _indicator(form: Form, field: str) -> Indicator | None:
    match = re.match(r"^indicators\[(\d+)\]", field)
    if not match or int(match.group(1)) >= len(form.indicators):
        return None
    return form.indicators[int(match.group(1))]


def _set_value(form: Form, field: str, text: str | None) -> Form:
    """A copy of the form with one field's text replaced (a reviewer's value is certain: confidence 1)."""
    row = re.match(r"^indicators\[(\d+)\]\.(\w+)$", field)
    if row:
        index, name = int(row.group(1)), row.group(2)
        indicators = list(form.indicators)
        indicator = indicators[index]
        if name == "catalogue_id":
            match = CatalogueMatch("accept", entry_id=text, canonical_name=None, score=1.0) if text else \
                CatalogueMatch("none")
            indicators[index] = replace(indicator, catalogue=match)
        else:
            fields = dict(indicator.fields)
            fields[name] = replace(fields.get(name, Value(None)), text=text, confidence=1.0)
            indicators[index] = replace(indicator, fields=fields)
        return replace(form, indicators=tuple(indicators))
    parts = field.split(".")
    if parts[0] == "funds" and len(parts) == 3:
        funds = {r: dict(c) for r, c in form.funds.items()}
        funds.setdefault(parts[1], {})
        funds[parts[1]][parts[2]] = replace(funds[parts[1]].get(parts[2], Value(None)), text=text, confidence=1.0)
        return replace(form, funds=funds)
    if parts[0] in ("goals", "total") and len(parts) == 2:
        section = dict(getattr(form, parts[0]))
        section[parts[1]] = replace(section.get(parts[1], Value(None)), text=text, confidence=1.0)
        return replace(form, **{parts[0]: section})
    if len(parts) == 1:
        header = dict(form.header)
        header[parts[0]] = replace(header.get(parts[0], Value(None)), text=text, confidence=1.0)
        return replace(form, header=header)
    raise KeyError(field)


def _revalidate(form: Form, decided: set[str]) -> Form:
    """Rules run again on the decided values; what a person decided is not asked again."""
    kept = tuple(f for f in form.flags if not f.reason.startswith("validation_failed:") and f.reason != "filled_from_totals")
    checked = validate_form(replace(form, flags=kept, issues=tuple(i for i in form.issues
                                                                   if not i.code.startswith("validation_failed:"))))
    open_flags = tuple(f for f in checked.flags if f.field not in decided and not _under_decided(f, decided))
    return replace(checked, flags=open_flags)


def _under_decided(flag: Flag, decided: set[str]) -> bool:
    return any(flag.field.startswith(d + ".") for d in decided)


def apply_stored_decisions(result: DocumentResult, decisions: list[Decision]) -> tuple[DocumentResult, list[Disagreement]]:
    """The result with every stored decision applied; disagreements between a decision's old value and
    what is read now are returned (the decision still wins)."""
    mine = [d for d in decisions if d.doc_id == result.doc_id]
    if not mine:
        return result, []
    disagreements: list[Disagreement] = []
    if any(d.field == "forms" and d.decision == "reject" for d in mine):
        return replace(result, forms=(), status=Status.FAILED,
                       error=result.error or "rejected by a reviewer: not a form"), []
    forms = list(result.forms)
    decided: dict[int, set[str]] = {}
    for d in mine:
        parts = split_path(d.field)
        if parts is None or parts[0] < 0 or parts[0] >= len(forms) or parts[1] is None:
            continue
        index, field = parts
        decided.setdefault(index, set()).add(field)
        now = current_value(replace(result, forms=tuple(forms)), d.field)
        if d.old_value is not None and (now or "") != (d.old_value or "") and d.decision != "accept":
            disagreements.append(Disagreement(d, now))
        try:
            if d.decision == "correct":
                forms[index] = _set_value(forms[index], field, d.new_value)
            elif d.decision == "reject":
                forms[index] = _set_value(forms[index], field, None)
            elif d.decision == "accept" and d.old_value is not None and now != d.old_value:
                # Accepted what the reviewer saw; a rerun reading something else keeps what was accepted.
                forms[index] = _set_value(forms[index], field, d.old_value)
        except (KeyError, IndexError):
            continue
    for index, fields in decided.items():
        forms[index] = _revalidate(forms[index], fields)
    status = Status.NEEDS_REVIEW if any(f.flags for f in forms) else Status.CLEAN
    if result.status is Status.FAILED:
        status = Status.FAILED
    return replace(result, forms=tuple(forms), status=status), disagreements
