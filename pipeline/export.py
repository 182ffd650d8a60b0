"""Exports: forms.jsonl, projects.csv, indicators.csv, review_queue.csv, written atomically.

CSVs are UTF-8 with a BOM (Excel and WPS then read Chinese correctly) and neutralise text that Excel
would run as a formula, as the OWASP CSV-injection guidance describes: a value starting with ``=``,
``+``, ``-``, ``@``, tab or CR (or the escape quote itself) gets a leading ``'``. :func:`read_csv` undoes
exactly that, so the project's own readers get back the original text.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from pipeline.datamodel import (
    FUND_COLS,
    FUND_ROWS,
    REVIEW_COLUMNS,
    DocumentResult,
    Form,
    Issue,
    ReviewItem,
    Status,
)
from pipeline.normalize import quantity_fields
from pipeline.review import document_items

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def excel_safe(value: str) -> str:
    """Text that Excel/WPS shows as text and never evaluates."""
    if value.startswith(FORMULA_TRIGGERS) or value.startswith(ESCAPE):
        return ESCAPE + value
    return value


def excel_unsafe(value: str) -> str:
    """Inverse of :func:`excel_safe`."""
    return value[1:] if value.startswith(ESCAPE) else value


@contextmanager
def atomic_writer(path: Path, *, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with atomic_writer(path, encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([excel_safe(_cell(row.get(c))) for c in columns])
            count += 1
    return count


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV this project wrote (or a reviewer saved), escapes undone."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{k: excel_unsafe(v or "") for k, v in row.items() if k is not None}
                for row in csv.DictReader(handle)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _number(text: str | None) -> int | float | str | None:
    """Weights, scores and years as JSON numbers (exactly: ints, or floats that round-trip)."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return text
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else text


def form_record(result: DocumentResult, form: Form, status: Status) -> dict[str, Any]:
    """A form as the output contract's JSON object."""
    funds: dict[str, dict[str, Any]] = {}
    for row in FUND_ROWS:
        cols = form.funds.get(row, {})
        funds[row] = {}
        for col in FUND_COLS:
            text = cols[col].text if col in cols else None
            funds[row][col] = _number(text) if col in ("weight", "score") else text
    indicators = []
    for indicator in form.indicators:
        record: dict[str, Any] = {}
        for name in ("level1", "level2", "name", "target", "actual"):
            record[name] = indicator.text(name)
        record["weight"] = _number(indicator.text("weight"))
        record["score"] = _number(indicator.text("score"))
        record["deviation"] = indicator.text("deviation")
        for side in ("target", "actual"):
            parts = quantity_fields(indicator.get(side))
            for part in ("op", "value", "unit"):
                record[f"{side}_{part}"] = parts[part]
        match = indicator.catalogue
        accepted = match is not None and match.decision == "accept"
        record["catalogue_id"] = match.entry_id if accepted and match else None
        record["catalogue_name"] = match.canonical_name if accepted and match else None
        record["catalogue_score"] = round(match.score, 4) if match else None
        record["catalogue_decision"] = match.decision if match else None
        confidences = [v.confidence for v in indicator.fields.values() if v.text is not None]
        record["confidence"] = round(min(confidences), 4) if confidences else 0.0
        name_value = indicator.get("name")
        record["provenance"] = {"page": name_value.page,
                                "bbox": name_value.bbox.to_list() if name_value.bbox else None}
        indicators.append(record)
    year = form.header.get("year")
    provenance = {}
    for name, value in form.header.items():
        if value.page is not None:
            provenance[name] = {"page": value.page, "bbox": value.bbox.to_list() if value.bbox else None}
    return {
        "doc_id": result.doc_id,
        "source": result.source,
        "form_index": form.form_index,
        "pages": list(form.pages),
        "status": status.value,
        "issues": [i.to_dict() for i in (*result.issues, *form.issues)],
        "title": form.header["title"].text if "title" in form.header else None,
        "year": _number(year.text) if year else None,
        "project_name": form.header["project_name"].text if "project_name" in form.header else None,
        "department": form.header["department"].text if "department" in form.header else None,
        "implementing_unit": form.header["implementing_unit"].text if "implementing_unit" in form.header else None,
        "funds": funds,
        "goals": {k: form.goals[k].text if k in form.goals else None for k in ("expected", "actual")},
        "indicators": indicators,
        "total": {k: _number(form.total[k].text) if k in form.total else None for k in ("weight", "score")},
        "provenance": provenance,
    }


def failed_record(result: DocumentResult) -> dict[str, Any]:
    """The line of a document that gave no form: the contract's shape, every field empty, status failed."""
    empty = Form(form_index=0, pages=(), header={}, funds={}, goals={}, indicators=(), total={})
    record = form_record(result, empty, Status.FAILED)
    if not record["issues"] and result.error:
        record["issues"] = [Issue("document_failed", result.error, "forms").to_dict()]
    return record


def form_status(form: Form) -> Status:
    if not form.indicators and not any(form.funds.values()):
        return Status.FAILED
    return Status.NEEDS_REVIEW if form.flags else Status.CLEAN


PROJECT_COLUMNS = (
    ["doc_id", "source", "form_index", "status", "pages", "title", "year", "project_name", "department",
     "implementing_unit"]
    + [f"{row}_{col}" for row in FUND_ROWS for col in FUND_COLS]
    + ["goals_expected", "goals_actual", "total_weight", "total_score", "indicators", "review_items", "issues"]
)
INDICATOR_COLUMNS = (
    "doc_id", "source", "form_index", "project_name", "indicator_index", "level1", "level2", "name",
    "target", "target_op", "target_value", "target_unit", "actual", "actual_op", "actual_value", "actual_unit",
    "weight", "score", "deviation", "catalogue_id", "catalogue_name", "catalogue_score", "confidence", "page", "bbox",
)


def export(out: Path, results: Sequence[DocumentResult]) -> dict[str, int]:
    """Write every output file from the given document results (in the order given)."""
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    review: list[ReviewItem] = []
    n_forms = 0
    for result in results:
        items = document_items(result)
        review.extend(items)
        if not result.forms and result.status is Status.FAILED:
            # A document that gave no form still gets its line (status failed, every field empty, the reason in
            # issues): whoever reads forms.jsonl or projects.csv sees it, not only the review queue.
            record = failed_record(result)
            record["review_items"] = len(items)
            records.append(record)
            continue
        n_forms += len(result.forms)
        for form in result.forms:
            record = form_record(result, form, form_status(form))
            record["review_items"] = sum(1 for i in items if i.field.startswith(f"forms[{form.form_index}]."))
            records.append(record)

    with atomic_writer(out / "forms.jsonl") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def project_rows() -> Iterator[dict[str, Any]]:
        for r in records:
            row = {k: r.get(k) for k in ("doc_id", "source", "form_index", "status", "title", "year", "project_name",
                                          "department", "implementing_unit")}
            row["pages"] = " ".join(str(p) for p in r["pages"])
            for fund_row in FUND_ROWS:
                for col in FUND_COLS:
                    row[f"{fund_row}_{col}"] = r["funds"][fund_row][col]
            row["goals_expected"], row["goals_actual"] = r["goals"]["expected"], r["goals"]["actual"]
            row["total_weight"], row["total_score"] = r["total"]["weight"], r["total"]["score"]
            row["indicators"] = len(r["indicators"])
            row["review_items"] = r["review_items"]
            row["issues"] = "; ".join(f"{i['code']}: {i['message']}" for i in r["issues"])
            yield row

    def indicator_rows() -> Iterator[dict[str, Any]]:
        for r in records:
            for k, ind in enumerate(r["indicators"]):
                row = {c: ind.get(c) for c in INDICATOR_COLUMNS if c in ind}
                row.update(doc_id=r["doc_id"], source=r["source"], form_index=r["form_index"],
                           project_name=r["project_name"], indicator_index=k, page=ind["provenance"]["page"],
                           bbox=" ".join(str(v) for v in ind["provenance"]["bbox"] or []))
                yield row

    counts = {
        "forms": n_forms,
        "projects": write_csv(out / "projects.csv", PROJECT_COLUMNS, project_rows()),
        "indicators": write_csv(out / "indicators.csv", INDICATOR_COLUMNS, indicator_rows()),
        "review_items": write_csv(out / "review_queue.csv", REVIEW_COLUMNS, (i.to_row() for i in review)),
    }
    # The same queue as a workbook for reviewers (Excel/WPS); imported here: review_io reads CSVs via this module.
    from pipeline.review_io import XLSX_NAME, write_queue_xlsx

    write_queue_xlsx(out / XLSX_NAME, review, root=out)
    return counts
