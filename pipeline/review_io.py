"""The review queue as people work it: the Excel workbook, reading a reviewed queue back, checking it
against the state store, and storing its decisions.

``review_queue.xlsx`` holds the rows of ``review_queue.csv`` for reviewers (Excel, WPS): every cell a text
cell, so ``=100%`` stays text and a number keeps its digits; the columns a reviewer looks at first, the
crop of the source region beside the value, a dropdown for the decision. Either file can be applied
back. A file with any problem is refused as a whole, with one message per row (numbered as Excel shows
them: the header is row 1), and nothing is stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import os
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.datamodel import REVIEW_COLUMNS, DocumentResult, ReviewItem, Status
from pipeline.decisions import (
    DECISIONS,
    apply_stored_decisions,
    catalogue_name,
    current_value,
    field_kind,
    form_value,
    normalize_correction,
    split_path,
)
from pipeline.errors import QueueFileError
from pipeline.export import excel_unsafe
from pipeline.quantity import parse_number
from pipeline.review import document_items
from pipeline.store import Decision, StateStore

XLSX_NAME = "review_queue.xlsx"
SHEET_NAME = "review_queue"
IMAGE_COLUMN = "image"
ROW = "_row"  # key of the row number (as Excel shows it) in what read_queue returns

# What a reviewer looks at and fills in comes first; the rest identifies the row.
XLSX_COLUMNS = (
    "field", "value", "candidates", IMAGE_COLUMN, "decision", "corrected_value", "reviewer", "note",
    "reason", "message", "confidence", "page", "source", "crop", "doc_id", "review_id",
)
REVIEWER_FILLS = ("decision", "corrected_value", "reviewer", "note")
WIDTHS = {
    "field": 30, "value": 40, "candidates": 32, IMAGE_COLUMN: 48, "decision": 12, "corrected_value": 30,
    "reviewer": 12, "note": 24, "reason": 26, "message": 60, "confidence": 11, "page": 6, "source": 30,
    "crop": 28, "doc_id": 14, "review_id": 18,
}
WRAPPED = ("value", "candidates", "corrected_value", "note", "message")
# Crops shown in the sheet: beyond this many the workbook gets slow to open, so the rest are links only.
MAX_IMAGES = 1000
IMAGE_MAX_WIDTH = 330  # pixels as shown (the column is ~48 characters wide)
IMAGE_MAX_HEIGHT = 240  # a tall cell (the goals text) stays readable; Excel rows end at 409 pt
# Spelled-out decisions a reviewer may type instead of picking from the dropdown.
DECISION_WORDS = {
    "accept": "accept", "correct": "correct", "reject": "reject",
    "接受": "accept", "确认": "accept", "更正": "correct", "修改": "correct", "拒绝": "reject", "驳回": "reject",
}

assert set(XLSX_COLUMNS) == {*REVIEW_COLUMNS, IMAGE_COLUMN}, "the workbook must carry every queue column"


# --------------------------------------------------------------------------------------------------
# Writing the workbook
# --------------------------------------------------------------------------------------------------


def xlsx_text(value: str) -> str:
    """The text as a worksheet can hold it: XML forbids most control characters, so they become U+FFFD."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)


def write_queue_xlsx(path: Path, items: Sequence[ReviewItem], root: Path | None = None) -> int:
    """Write the review queue workbook atomically; crops are looked up under ``root`` (the output folder)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.styles.cell_style import StyleArray
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    root = root if root is not None else path.parent
    book = Workbook(write_only=True)  # streams rows: a queue of many thousand items stays cheap in memory
    sheet = book.create_sheet(SHEET_NAME)
    sheet.freeze_panes = "A2"
    letters = {name: get_column_letter(i) for i, name in enumerate(XLSX_COLUMNS, start=1)}
    for name, letter in letters.items():
        sheet.column_dimensions[letter].width = WIDTHS[name]
    last_row = len(items) + 1
    sheet.auto_filter.ref = f"A1:{letters[XLSX_COLUMNS[-1]]}{last_row}"
    choice = DataValidation(type="list", formula1='"' + ",".join(DECISIONS) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="decision",
                            error="Pick accept, correct or reject (or leave it empty: still open).",
                            promptTitle="decision", prompt="accept: the value is right · correct: put the right "
                            "value in corrected_value · reject: the value is wrong and should be empty")
    choice.showInputMessage = True
    choice.add(f"{letters['decision']}2:{letters['decision']}{max(last_row, 2)}")
    sheet.data_validations.append(choice)

    header_fill = PatternFill("solid", fgColor="D9D9D9")
    fill_in = PatternFill("solid", fgColor="FFF2CC")
    bold = Font(bold=True)
    top = Alignment(vertical="top")
    wrapped = Alignment(vertical="top", wrap_text=True)

    def styled(*, header: bool, column: str) -> StyleArray:
        cell = WriteOnlyCell(sheet)
        cell.number_format = "@"  # what a reviewer types there stays text too
        if header:
            cell.font = bold
            cell.fill = fill_in if column in REVIEWER_FILLS else header_fill
        else:
            cell.alignment = wrapped if column in WRAPPED else top
            if column in REVIEWER_FILLS:
                cell.fill = fill_in
        return cell._style  # type: ignore[attr-defined]  # openpyxl's own style record

    # Styles made once per column and copied: setting them cell by cell costs more than the rest of the export.
    styles = {(header, name): styled(header=header, column=name) for header in (True, False) for name in XLSX_COLUMNS}

    def text_cell(value: str, *, header: bool = False, column: str = "") -> Any:
        cell = WriteOnlyCell(sheet, value=xlsx_text(value))
        cell.data_type = "s"  # never a formula or a number, whatever the text looks like
        cell._style = StyleArray(styles[header, column])  # type: ignore[attr-defined]
        return cell

    sheet.append([text_cell(name, header=True, column=name) for name in XLSX_COLUMNS])
    images = 0
    for number, item in enumerate(items, start=2):
        row = item.to_row()
        cells = []
        for name in XLSX_COLUMNS:
            cell = text_cell(row.get(name, ""), column=name)
            if name == "crop" and item.crop:
                cell.hyperlink = item.crop  # relative to the workbook, which sits in the output folder
            cells.append(cell)
        crop = root / item.crop if item.crop else None
        if crop is not None and images < MAX_IMAGES and crop.is_file():
            height = _embed(sheet, crop, f"{letters[IMAGE_COLUMN]}{number}")
            if height:
                images += 1
                sheet.row_dimensions[number].height = height * 0.75 + 4  # points; pixels * 3/4
        sheet.append(cells)
    _save_atomically(book, path)
    return len(items)


def _embed(sheet: Any, crop: Path, anchor: str) -> int:
    """Put a crop image at ``anchor`` scaled to fit the cell; its shown height in pixels (0 if unreadable)."""
    from openpyxl.drawing.image import Image as SheetImage
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(crop) as probe:
            width, height = probe.size
        image = SheetImage(str(crop))
    except (OSError, UnidentifiedImageError):
        return 0  # a damaged crop: the row keeps its link, the export goes on
    scale = min(1.0, IMAGE_MAX_WIDTH / max(width, 1), IMAGE_MAX_HEIGHT / max(height, 1))
    image.width, image.height = max(1, round(width * scale)), max(1, round(height * scale))
    image.anchor = anchor
    sheet.add_image(image)
    return int(image.height)


def _save_atomically(book: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        book.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------
# Reading a reviewed queue
# --------------------------------------------------------------------------------------------------


def read_queue(path: Path) -> list[dict[str, str]]:
    """The rows of a reviewed queue (CSV or XLSX), each a dict of its columns plus ``_row``, the row
    number as Excel shows it. Escapes of the CSV are undone; XLSX cells are read as text. A file whose
    structure is wrong (missing columns, rows of the wrong length) raises QueueFileError."""
    rows, problems = _read(path)
    if problems:
        raise QueueFileError("cannot be read as a review queue", problems, source=str(path))
    return rows


def _read(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        raise QueueFileError("is neither a .csv nor a .xlsx review queue", [], source=str(path))
    if not path.is_file():
        raise QueueFileError("no such file", [], source=str(path))
    records = _csv_records(path) if suffix == ".csv" else _xlsx_records(path)
    try:
        header = next(records)
    except StopIteration:
        raise QueueFileError("is empty: not even a header row", [], source=str(path)) from None
    names = [name.strip() for name in header]
    problems: list[str] = []
    missing = [c for c in REVIEW_COLUMNS if c not in names]
    if missing:
        problems.append(f"row 1: missing column(s) {', '.join(missing)}; the header must be the one formrescue "
                        "wrote (columns may be moved, not renamed or deleted)")
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    if duplicated:
        problems.append(f"row 1: column(s) {', '.join(duplicated)} appear more than once")
    if problems:
        return [], problems
    rows: list[dict[str, str]] = []
    for number, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue  # an empty line (spreadsheets often leave some at the end)
        if len(record) > len(names) and any(cell.strip() for cell in record[len(names):]):
            problems.append(f"row {number}{_rid(record, names)}: has {len(record)} cells but the header has "
                            f"{len(names)} columns (a cell with a comma or quote that lost its quoting?)")
            continue
        if len(record) < len(names) and _is_csv(path):
            problems.append(f"row {number}{_rid(record, names)}: has {len(record)} cells but the header has "
                            f"{len(names)} columns")
            continue
        values = {name: (record[i] if i < len(record) else "") for i, name in enumerate(names) if name}
        values[ROW] = str(number)
        rows.append(values)
    return rows, problems


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _rid(record: Sequence[str], names: Sequence[str]) -> str:
    if "review_id" in names:
        index = names.index("review_id")
        if index < len(record) and record[index].strip():
            return f" (review id {record[index].strip()})"
    return ""


def _csv_records(path: Path) -> Iterator[list[str]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's plain "CSV" format saves in the local code page (GBK on Chinese Windows).
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise QueueFileError("is neither UTF-8 nor GBK text; save it as 'CSV UTF-8' or use the .xlsx",
                                 [], source=str(path)) from None
    try:
        # The same escape undoing as export.read_csv; records are read here so rows of the wrong length show.
        for record in csv.reader(io.StringIO(text, newline="")):
            yield [excel_unsafe(cell) for cell in record]
    except csv.Error as exc:
        raise QueueFileError(f"is not a readable CSV ({exc})", [], source=str(path)) from None


def _xlsx_records(path: Path) -> Iterator[list[str]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # A damaged workbook makes openpyxl (zipfile, lxml) raise many kinds of error (XMLSyntaxError, EOFError,
    # NotImplementedError for an odd compression, IndexError for no sheet …): to the reviewer all say the same.
    unreadable = (InvalidFileException, zipfile.BadZipFile, zlib.error, KeyError, IndexError, ValueError, TypeError,
                  SyntaxError, EOFError, NotImplementedError, OSError)
    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except unreadable as exc:
        raise QueueFileError(f"is not a readable .xlsx workbook ({type(exc).__name__}: {exc})", [],
                             source=str(path)) from None
    try:
        sheet = book[SHEET_NAME] if SHEET_NAME in book.sheetnames else book.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_xlsx_cell_text(v) for v in values]
    except unreadable as exc:
        raise QueueFileError(f"is not a readable .xlsx workbook ({type(exc).__name__}: {exc})", [],
                             source=str(path)) from None
    finally:
        book.close()


def _xlsx_cell_text(value: Any) -> str:
    """A cell as text. Cells written by formrescue are text; a reviewer's cell may have become a number."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------------------------
# Checking a reviewed queue against the store
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alias:
    """A printed indicator name a reviewer tied to a catalogue id: matched at once on later runs."""

    variant: str
    entry_id: str
    doc_id: str
    reviewer: str | None


@dataclass(frozen=True, slots=True)
class QueuePlan:
    """What applying a reviewed queue will do (nothing is stored yet)."""

    path: str
    decisions: tuple[Decision, ...]  # new or changed
    aliases: tuple[Alias, ...]
    unchanged: int  # rows whose decision is stored already, as it is
    still_open: int  # rows without a decision
    rows: int


@dataclass(frozen=True, slots=True)
class _Known:
    """A review item as the store sees it now."""

    doc_id: str
    field: str
    shows: str  # what the queue's value column must hold
    decided: Decision | None
    accept_id: str | None  # catalogue items: the id an accept means (accepted or top candidate)
    printed_name: str | None  # catalogue items: the indicator name as extracted


def known_items(store: StateStore, only: set[str] | None = None) -> dict[str, _Known]:
    """Every review id of the folder's current documents (or of those in ``only``): open, resolved by
    another decision, or decided."""
    known: dict[str, _Known] = {}
    for doc_id, _source in store.current_documents():
        if only is not None and doc_id not in only:
            continue
        raw = store.result(doc_id)
        if raw is None:
            continue
        stored = store.decisions(doc_id)
        applied, _ = apply_stored_decisions(raw, stored)
        by_field = {d.field: d for d in stored}
        for result in (applied, raw):  # the current value first; raw adds items another decision resolved
            for item in document_items(result):
                if item.review_id in known:
                    continue
                decision = by_field.get(item.field)
                shows = decision.old_value if decision and decision.old_value is not None else \
                    (current_value(applied, item.field) or "")
                known[item.review_id] = _Known(doc_id, item.field, shows, decision, *_catalogue_facts(raw, applied,
                                                                                                     item.field))
        for d in stored:  # decided items whose flag is gone from both
            if d.review_id not in known:
                known[d.review_id] = _Known(doc_id, d.field, d.old_value or "", d, *_catalogue_facts(raw, applied,
                                                                                                     d.field))
    return known


def _catalogue_facts(raw: DocumentResult, applied: DocumentResult, path: str) -> tuple[str | None, str | None]:
    parts = split_path(path)
    if parts is None:
        return None, None
    index, relative = parts
    if relative is None or not relative.endswith(".catalogue_id"):
        return None, None
    if not 0 <= index < len(raw.forms) or index >= len(applied.forms):
        return None, None
    indicator_path = relative.rsplit(".", 1)[0]
    name = form_value(raw.forms[index], indicator_path + ".name")
    form = applied.forms[index]
    row = int(indicator_path.split("[", 1)[1].rstrip("]"))
    match = form.indicators[row].catalogue if row < len(form.indicators) else None
    accept_id = None
    if match is not None:
        accept_id = match.entry_id or (match.candidates[0][0] if match.candidates else None)
    return accept_id, name


def _same_shown(given: str, shown: str) -> bool:
    if given == shown or given.strip() == shown.strip():
        return True
    # A CSV opened and saved by a spreadsheet may lose a number's trailing zeros (10580000.00 -> 10580000).
    first, second = parse_number(given), parse_number(shown)
    return (first is not None and second is not None and not first.repaired and not second.repaired
            and first.value == second.value)


def check_queue(path: Path, store: StateStore, *, applied_by: str | None = None,
                now: float | None = None) -> QueuePlan:
    """Read a reviewed queue and check every row against the store; QueueFileError lists every problem."""
    rows, problems = _read(path)
    # Only the documents the file names are looked at: a queue of a few rows from a big archive stays quick.
    known = known_items(store, only={row["doc_id"].strip() for row in rows})
    applied_by = applied_by or _user()
    now = time.time() if now is None else now
    is_xlsx = not _is_csv(path)
    decisions: list[Decision] = []
    aliases: dict[str, tuple[Alias, int]] = {}
    first_seen: dict[str, int] = {}
    unchanged = still_open = 0
    for row in rows:
        number = int(row[ROW])
        rid = row["review_id"].strip()
        where = f"row {number}" + (f" (review id {rid})" if rid else "")
        trouble: list[str] = []
        if not rid:
            problems.append(f"{where}: no review_id (rows cannot be added to the queue)")
            continue
        if rid in first_seen:
            problems.append(f"{where}: the same review id is on row {first_seen[rid]} already")
            continue
        first_seen[rid] = number
        item = known.get(rid)
        if item is None:
            problems.append(f"{where}: unknown review id: this output folder has no such item (a queue from "
                            "another --out, or a document since replaced by a new version of its file?)")
            continue
        if row["field"].strip() != item.field or row["doc_id"].strip() != item.doc_id:
            trouble.append(f"the doc_id/field columns were changed (the item is {item.field} of {item.doc_id[:12]}…)")
        shown = xlsx_text(item.shows) if is_xlsx else item.shows
        if not _same_shown(row["value"], shown):
            trouble.append(f"the value column was changed from {shown!r} to {row['value']!r}; leave it as it was "
                           "and put the right value in corrected_value with decision correct")
        typed = row["decision"].strip()
        corrected = row["corrected_value"].strip()
        decision = DECISION_WORDS.get(typed.lower(), typed.lower()) if typed else ""
        new_value: str | None = None
        if not decision:
            if corrected:
                trouble.append("corrected_value is filled but decision is empty; set decision to correct")
            elif not trouble and item.decided is None:  # an empty row never undoes a stored decision
                still_open += 1
        elif decision not in DECISIONS:
            trouble.append(f"decision {typed!r} is not one of accept, correct, reject")
        else:
            new_value, wrong = _decided(item, decision, corrected)
            trouble.extend(wrong)
        if trouble:
            problems.extend(f"{where}: {message}" for message in trouble)
            continue
        if not decision:
            continue
        reviewer = row["reviewer"].strip() or applied_by
        note = row["note"].strip() or None
        before = item.decided
        if before is not None and (before.decision, before.new_value, before.note) == (decision, new_value, note):
            unchanged += 1
        else:
            old_value = before.old_value if before is not None else item.shows
            decisions.append(Decision(item.doc_id, item.field, rid, decision, old_value, new_value, reviewer, note,
                                      now))
        if field_kind(_relative(item.field)) == "catalogue" and decision != "reject" and new_value and \
                item.printed_name:
            earlier = aliases.get(item.printed_name)
            if earlier is not None and earlier[0].entry_id != new_value:
                problems.append(f"{where}: {item.printed_name!r} is tied to {new_value} here but to "
                                f"{earlier[0].entry_id} on row {earlier[1]}")
                continue
            aliases[item.printed_name] = (Alias(item.printed_name, new_value, item.doc_id, reviewer), number)
    if problems:
        raise QueueFileError(f"not applied: {len(problems)} problem(s); nothing was stored, fix the rows and "
                             "apply it again", problems, source=str(path))
    return QueuePlan(str(path), tuple(decisions), tuple(a for a, _ in aliases.values()), unchanged, still_open,
                     len(rows))


def _relative(path: str) -> str:
    parts = split_path(path)
    return parts[1] if parts is not None and parts[1] is not None else path


def _decided(item: _Known, decision: str, corrected: str) -> tuple[str | None, list[str]]:
    """The new value a valid decision stores, or the reasons it is not valid."""
    if item.field == "forms":
        if decision == "correct":
            return None, ["a document that could not be read cannot be corrected here: accept (it stays failed) "
                          "or reject (not a form), or fix the file and run it again"]
        if corrected:
            return None, ["corrected_value is only read with decision correct"]
        return None, []
    kind = field_kind(_relative(item.field))
    if decision != "correct":
        if corrected:
            return None, [f"corrected_value is only read with decision correct (decision here: {decision})"]
        if decision == "reject" or kind is None:
            return None, []
        if kind == "catalogue":
            if not item.accept_id:
                return None, ["there is no catalogue candidate to accept: correct it with a catalogue id, or "
                              "reject it (a new indicator)"]
            return item.accept_id, []
        return item.shows, []
    if not corrected:
        return None, ["decision correct needs a corrected_value (to empty the field, use reject)"]
    if kind is None:
        return None, [f"{item.field} is a part of the form that was not found, not a value: accept or reject it"]
    if kind == "catalogue":
        entry_id = corrected.split()[0]  # "QTY-001", or a candidate copied whole: "QTY-001 培训人次 (0.73)"
        if catalogue_name(entry_id) is None:
            return None, [f"corrected_value {entry_id!r} is not an id of the indicator catalogue"]
        return entry_id, []
    try:
        return normalize_correction(kind, corrected), []
    except ValueError as exc:
        return None, [f"corrected_value {exc}"]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


# --------------------------------------------------------------------------------------------------
# Applying, and what is still open
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyReport:
    queue: str
    rows: int
    stored: int
    unchanged: int
    still_open: int
    aliases: int
    by_decision: dict[str, int]
    documents: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"queue": self.queue, "rows": self.rows, "stored": self.stored, "unchanged": self.unchanged,
                "still_open": self.still_open, "aliases": self.aliases, "by_decision": dict(self.by_decision),
                "documents": list(self.documents)}


def apply_queue(path: Path, store: StateStore, *, applied_by: str | None = None) -> ApplyReport:
    """Check a reviewed queue and store its decisions (all or none) and the aliases they teach.

    The caller holds the output folder's lock and regenerates the outputs afterwards.
    """
    plan = check_queue(path, store, applied_by=applied_by)
    store.save_decisions(list(plan.decisions))
    for alias in plan.aliases:
        store.add_alias(alias.variant, alias.entry_id, alias.doc_id, alias.reviewer)
    return ApplyReport(
        queue=plan.path, rows=plan.rows, stored=len(plan.decisions), unchanged=plan.unchanged,
        still_open=plan.still_open, aliases=len(plan.aliases),
        by_decision=dict(Counter(d.decision for d in plan.decisions)),
        documents=tuple(sorted({d.doc_id for d in plan.decisions})),
    )


@dataclass(frozen=True, slots=True)
class QueueStatus:
    open_by_reason: dict[str, int]
    open_by_document: list[tuple[str, str, int]]  # (source, doc_id, open items)
    decided: dict[str, int]  # decision -> fields decided
    forms: dict[str, int]  # form status -> forms
    aliases: int
    reasons_text: dict[str, str] = field(default_factory=dict)

    @property
    def open_items(self) -> int:
        return sum(n for _, _, n in self.open_by_document)


def queue_status(store: StateStore) -> QueueStatus:
    """Open items by reason and by document, and what reviewers decided, from the store."""
    from pipeline.export import form_status
    from pipeline.review import reason_text
    from pipeline.workspace import current_results

    decided_ids = {d.review_id for d in store.decisions()}
    reasons: Counter[str] = Counter()
    documents: list[tuple[str, str, int]] = []
    forms: Counter[str] = Counter()
    for result in current_results(store):
        open_items = [i for i in document_items(result) if i.review_id not in decided_ids]
        for item in open_items:
            reasons.update(code for code in item.reason.split(";") if code)
        if open_items:
            documents.append((result.source, result.doc_id, len(open_items)))
        if result.status is Status.FAILED and not result.forms:
            forms["failed (document)"] += 1
        for form in result.forms:
            forms[form_status(form).value] += 1
    decided = Counter(d.decision for d in store.decisions())
    return QueueStatus(
        open_by_reason=dict(reasons.most_common()),
        open_by_document=sorted(documents, key=lambda d: (-d[2], d[0])),
        decided=dict(decided), forms=dict(forms), aliases=len(store.aliases()),
        reasons_text={code: reason_text(code) for code in reasons},
    )


def format_status(status: QueueStatus) -> str:
    """A small plain-text report for the terminal."""
    lines = [f"open review items: {status.open_items} in {len(status.open_by_document)} document(s)"]
    if status.open_by_reason:
        lines += ["", "open by reason:"]
        width = max(len(code) for code in status.open_by_reason)
        lines += [f"  {count:6d}  {code:<{width}}  {status.reasons_text.get(code, '')}"
                  for code, count in status.open_by_reason.items()]
    if status.open_by_document:
        lines += ["", "open by document:"]
        lines += [f"  {count:6d}  {source}  ({doc_id[:12]})" for source, doc_id, count in status.open_by_document]
    decided = ", ".join(f"{n} {d}" for d, n in sorted(status.decided.items())) or "nothing yet"
    forms = ", ".join(f"{n} {s}" for s, n in sorted(status.forms.items())) or "none"
    lines += ["", f"decided: {decided} · learned aliases: {status.aliases}", f"forms: {forms}"]
    return "\n".join(lines)

