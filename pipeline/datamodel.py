"""The one data model passed from step to step.

Geometry is in pixels of the page it belongs to (``page`` is 1-based). A text dump has no geometry, so
its boxes are ``None``; everything else about it has the same shape as a scan, so both feed the same
form profile.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BBox:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def union(self, other: BBox) -> BBox:
        return BBox(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def intersection_area(self, other: BBox) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def expand(self, margin: float) -> BBox:
        return BBox(self.x0 - margin, self.y0 - margin, self.x1 + margin, self.y1 + margin)

    def to_list(self) -> list[int]:
        return [round(self.x0), round(self.y0), round(self.x1), round(self.y1)]

    @staticmethod
    def from_list(values: Iterable[float]) -> BBox:
        x0, y0, x1, y1 = (float(v) for v in values)
        return BBox(x0, y0, x1, y1)

    @staticmethod
    def enclosing(boxes: Iterable[BBox]) -> BBox | None:
        result: BBox | None = None
        for box in boxes:
            result = box if result is None else result.union(box)
        return result


@dataclass(frozen=True, slots=True)
class Word:
    """One OCR text line (or text-layer run) with its box and recognition confidence (0..1)."""

    text: str
    bbox: BBox
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell. ``row``/``col`` are the top-left grid position; spans make merged cells explicit.

    Rows are numbered across the whole document (a logical table may run over several pages); ``page``
    is the page the cell was printed on. A line of free text outside any table (a title, a note) is a
    one-cell row with ``ruled=False`` spanning all columns.
    """

    row: int
    col: int
    text: str
    row_span: int = 1
    col_span: int = 1
    bbox: BBox | None = None
    confidence: float = 1.0
    page: int = 1
    ruled: bool = True
    words: tuple[Word, ...] = ()
    raw: str | None = None  # text as read, before cleaning (text dumps keep their wrapped-cell spaces here)

    @property
    def last_row(self) -> int:
        return self.row + self.row_span - 1

    @property
    def last_col(self) -> int:
        return self.col + self.col_span - 1


class SourceKind(enum.StrEnum):
    TEXT_DUMP = "text_dump"
    OCR = "ocr"
    TEXT_LAYER = "text_layer"


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of one document in reading order, possibly running over several pages.

    ``row_pages[r]`` is the page row ``r`` sits on, so a page break is where it changes. ``col_edges``
    (scans only) are the column boundaries as fractions of the table width, shared by every page.
    """

    cells: tuple[Cell, ...]
    n_rows: int
    n_cols: int
    row_pages: tuple[int, ...]
    kind: SourceKind
    col_edges: tuple[float, ...] = ()
    # The cells covering each row, built on first use: the form profile asks for rows one by one.
    _covering: tuple[tuple[Cell, ...], ...] | None = field(default=None, init=False, repr=False, compare=False)

    def rows(self) -> list[list[Cell]]:
        """Cells grouped by the row they start on, each row sorted by column."""
        grouped: list[list[Cell]] = [[] for _ in range(self.n_rows)]
        for cell in self.cells:
            grouped[cell.row].append(cell)
        for row in grouped:
            row.sort(key=lambda c: c.col)
        return grouped

    def covering(self, row: int) -> list[Cell]:
        """Cells that cover ``row`` (including merged cells that started above it), by column."""
        if getattr(self, "_covering", None) is None:  # (a Table pickled before this field has no slot value)
            span = max([self.n_rows, *(c.last_row + 1 for c in self.cells)])
            by_row: list[list[Cell]] = [[] for _ in range(span)]
            for cell in self.cells:
                for r in range(max(0, cell.row), cell.last_row + 1):
                    by_row[r].append(cell)
            object.__setattr__(self, "_covering", tuple(tuple(sorted(cells, key=lambda c: c.col)) for cells in by_row))
        assert self._covering is not None
        return list(self._covering[row]) if 0 <= row < len(self._covering) else []

    def page_break_before(self, row: int) -> bool:
        return 0 < row < self.n_rows and self.row_pages[row] != self.row_pages[row - 1]


@dataclass(frozen=True, slots=True)
class PageImage:
    """A rasterised page handed to layout/OCR. ``image`` is a uint8 ``numpy.ndarray``: RGB (H, W, 3), or
    gray (H, W) for a gray scan (its one channel is all there is to read)."""

    number: int
    image: Any
    dpi: float
    text_words: tuple[Word, ...] | None = None  # words of a PDF text layer, in this image's pixels
    # The gray (luminance) of a colour ``image`` when reading made it already (the blank check): page
    # preparation starts from it instead of converting the page a second time.
    luminance: Any = None


class Status(enum.StrEnum):
    CLEAN = "clean"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Issue:
    """Something a user should know about a document or form. ``field`` is a path or ''."""

    code: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "field": self.field}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Issue:
        return Issue(str(data["code"]), str(data["message"]), str(data.get("field") or ""))


@dataclass(frozen=True, slots=True)
class Value:
    """One extracted field: the cleaned text as printed, what was read, and where it came from.

    ``text`` None means the cell was absent or empty. ``raw`` keeps what the reader saw before repairs.
    """

    text: str | None
    raw: str | None = None
    confidence: float = 1.0
    page: int | None = None
    bbox: BBox | None = None

    @property
    def empty(self) -> bool:
        return self.text is None or self.text.strip() in ("", "—", "-", "/", "－", "——")

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "raw": self.raw,
            "confidence": round(self.confidence, 4),
            "page": self.page,
            "bbox": self.bbox.to_list() if self.bbox else None,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Value:
        bbox = data.get("bbox")
        return Value(
            text=data.get("text"),
            raw=data.get("raw"),
            confidence=float(data.get("confidence", 1.0)),
            page=data.get("page"),
            bbox=BBox.from_list(bbox) if bbox else None,
        )


MISSING = Value(None, None, 1.0)


@dataclass(frozen=True, slots=True)
class Flag:
    """A field the pipeline is unsure of: it goes to the review queue with its reason.

    ``reason`` is a stable code (``low_ocr_confidence``, ``level2_ambiguous``,
    ``validation_failed:score_gt_weight`` …); ``candidates`` are alternatives with scores where known.
    """

    field: str
    reason: str
    message: str
    confidence: float = 0.0
    candidates: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "reason": self.reason,
            "message": self.message,
            "confidence": round(self.confidence, 4),
            "candidates": [[c, round(s, 4)] for c, s in self.candidates],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Flag:
        return Flag(
            field=str(data["field"]),
            reason=str(data["reason"]),
            message=str(data.get("message", "")),
            confidence=float(data.get("confidence", 0.0)),
            candidates=tuple((str(c), float(s)) for c, s in data.get("candidates", [])),
        )


INDICATOR_FIELDS = ("level1", "level2", "name", "target", "actual", "weight", "score", "deviation")
HEADER_FIELDS = ("title", "year", "project_name", "department", "implementing_unit")
FUND_ROWS = ("total", "fiscal_appropriation", "carryover", "other")
FUND_COLS = ("initial_budget", "annual_budget", "executed", "weight", "execution_rate", "score")
GOAL_FIELDS = ("expected", "actual")
TOTAL_FIELDS = ("weight", "score")


@dataclass(frozen=True, slots=True)
class CatalogueMatch:
    """Outcome of matching an indicator name to the canonical catalogue.

    ``decision`` is ``accept`` (``entry_id`` set), ``review`` (top ``candidates`` set) or ``none``
    (a new indicator: kept as printed).
    """

    decision: str
    entry_id: str | None = None
    canonical_name: str | None = None
    score: float = 0.0
    candidates: tuple[tuple[str, str, float], ...] = ()  # (entry_id, canonical name, score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "entry_id": self.entry_id,
            "canonical_name": self.canonical_name,
            "score": round(self.score, 4),
            "candidates": [[i, n, round(s, 4)] for i, n, s in self.candidates],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CatalogueMatch:
        return CatalogueMatch(
            decision=str(data.get("decision", "none")),
            entry_id=data.get("entry_id"),
            canonical_name=data.get("canonical_name"),
            score=float(data.get("score", 0.0)),
            candidates=tuple((str(i), str(n), float(s)) for i, n, s in data.get("candidates", [])),
        )


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator row. ``fields`` maps each name in INDICATOR_FIELDS to its Value."""

    fields: dict[str, Value]
    catalogue: CatalogueMatch | None = None

    def get(self, name: str) -> Value:
        return self.fields.get(name, MISSING)

    def text(self, name: str) -> str | None:
        return self.get(name).text

    @property
    def pages(self) -> tuple[int, ...]:
        return tuple(sorted({v.page for v in self.fields.values() if v.page is not None}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": {k: v.to_dict() for k, v in self.fields.items()},
            "catalogue": self.catalogue.to_dict() if self.catalogue else None,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Indicator:
        cat = data.get("catalogue")
        return Indicator(
            fields={k: Value.from_dict(v) for k, v in data["fields"].items()},
            catalogue=CatalogueMatch.from_dict(cat) if cat else None,
        )


@dataclass(frozen=True, slots=True)
class Form:
    """One form as extracted: sections map field names to Values; flags and issues travel with it."""

    form_index: int
    pages: tuple[int, ...]
    header: dict[str, Value]
    funds: dict[str, dict[str, Value]]
    goals: dict[str, Value]
    indicators: tuple[Indicator, ...]
    total: dict[str, Value]
    issues: tuple[Issue, ...] = ()
    flags: tuple[Flag, ...] = ()

    def value_at(self, path: str) -> Value:
        """The Value at a field path relative to the form (``indicators[3].name``, ``funds.total.score``)."""
        return resolve_path(self, path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "form_index": self.form_index,
            "pages": list(self.pages),
            "header": {k: v.to_dict() for k, v in self.header.items()},
            "funds": {r: {c: v.to_dict() for c, v in cols.items()} for r, cols in self.funds.items()},
            "goals": {k: v.to_dict() for k, v in self.goals.items()},
            "indicators": [i.to_dict() for i in self.indicators],
            "total": {k: v.to_dict() for k, v in self.total.items()},
            "issues": [i.to_dict() for i in self.issues],
            "flags": [f.to_dict() for f in self.flags],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Form:
        return Form(
            form_index=int(data["form_index"]),
            pages=tuple(data.get("pages", [])),
            header={k: Value.from_dict(v) for k, v in data["header"].items()},
            funds={r: {c: Value.from_dict(v) for c, v in cols.items()} for r, cols in data["funds"].items()},
            goals={k: Value.from_dict(v) for k, v in data["goals"].items()},
            indicators=tuple(Indicator.from_dict(i) for i in data["indicators"]),
            total={k: Value.from_dict(v) for k, v in data["total"].items()},
            issues=tuple(Issue.from_dict(i) for i in data.get("issues", [])),
            flags=tuple(Flag.from_dict(f) for f in data.get("flags", [])),
        )


def _split_path(path: str) -> Iterator[str | int]:
    for part in path.split("."):
        while "[" in part:
            head, _, rest = part.partition("[")
            if head:
                yield head
            index, _, part = rest.partition("]")
            yield int(index)
        if part:
            yield part


def resolve_path(form: Form, path: str) -> Value:
    """Follow a field path such as ``indicators[3].name`` or ``funds.total.score`` to its Value."""
    parts = list(_split_path(path))
    if not parts:
        raise KeyError(path)
    head = parts[0]
    try:
        if head == "indicators" and len(parts) == 3:
            return form.indicators[int(parts[1])].get(str(parts[2]))
        if head == "funds" and len(parts) == 3:
            return form.funds[str(parts[1])][str(parts[2])]
        if head in ("goals", "total") and len(parts) == 2:
            section: dict[str, Value] = getattr(form, head)
            return section[str(parts[1])]
        if len(parts) == 1 and isinstance(head, str) and head in HEADER_FIELDS:
            return form.header[head]
    except (IndexError, KeyError, ValueError) as exc:
        raise KeyError(path) from exc
    raise KeyError(path)


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """Everything one document produced: its forms, document-level issues and flags, and its status."""

    doc_id: str
    source: str
    status: Status
    forms: tuple[Form, ...] = ()
    issues: tuple[Issue, ...] = ()
    n_pages: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    crops: dict[str, str] = field(default_factory=dict)  # field path -> crop file relative to OUT

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "status": self.status.value,
            "forms": [f.to_dict() for f in self.forms],
            "issues": [i.to_dict() for i in self.issues],
            "n_pages": self.n_pages,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "error": self.error,
            "crops": dict(self.crops),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> DocumentResult:
        return DocumentResult(
            doc_id=str(data["doc_id"]),
            source=str(data["source"]),
            status=Status(data["status"]),
            forms=tuple(Form.from_dict(f) for f in data.get("forms", [])),
            issues=tuple(Issue.from_dict(i) for i in data.get("issues", [])),
            n_pages=int(data.get("n_pages", 0)),
            timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
            error=data.get("error"),
            crops={str(k): str(v) for k, v in data.get("crops", {}).items()},
        )


REVIEW_COLUMNS = (
    "review_id", "doc_id", "source", "page", "field", "value", "candidates", "reason", "message", "confidence", "crop",
    "decision", "corrected_value", "reviewer", "note",
)
REVIEWER_COLUMNS = ("decision", "corrected_value", "reviewer", "note")


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One row of the review queue: a value a person must look at, where it is, and why.

    ``review_id`` is stable for (document, field), so a decision made on it survives reruns.
    ``reason`` holds the stable codes of every flag on the field, ``;``-separated.
    """

    review_id: str
    doc_id: str
    source: str
    page: int | None
    field: str
    value: str | None
    candidates: tuple[tuple[str, float], ...]
    reason: str
    message: str
    confidence: float
    crop: str = ""

    def to_row(self) -> dict[str, str]:
        return {
            "review_id": self.review_id,
            "doc_id": self.doc_id,
            "source": self.source,
            "page": "" if self.page is None else str(self.page),
            "field": self.field,
            "value": self.value or "",
            "candidates": " | ".join(f"{c} ({s:.2f})" for c, s in self.candidates),
            "reason": self.reason,
            "message": self.message,
            "confidence": f"{self.confidence:.2f}",
            "crop": self.crop,
            "decision": "",
            "corrected_value": "",
            "reviewer": "",
            "note": "",
        }
