"""One document from file to validated forms: the library's whole job for one input, as plain functions.

Flows (``flows/``) call :func:`process_file` per document; nothing here imports Prefect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from pipeline.config import Settings
from pipeline.crops import KeptPages, write_crops
from pipeline.datamodel import DocumentResult, Issue, PageImage, Status, Table
from pipeline.errors import FormRescueError, InputError, NotAFormError
from pipeline.forms import extract_forms
from pipeline.ingest import (
    IMAGE_KINDS,
    decode_text,
    iter_image_pages,
    iter_pdf_pages,
    load_bytes,
    parse_text_dump,
    read_head,
    sha256_file,
    sniff_kind,
)
from pipeline.normalize import normalize_form
from pipeline.ocr.base import OcrEngine, get_engine, lazy_engine
from pipeline.validate import validate_form


class _Shared:
    """Engines and catalogues are loaded once per process and shared by its worker threads."""

    lock = threading.Lock()
    engines: ClassVar[dict[str, OcrEngine]] = {}
    catalogues: ClassVar[dict[tuple[str | None, tuple[tuple[str, str], ...]], object]] = {}


def shared_engine(name: str) -> OcrEngine:
    with _Shared.lock:
        if name not in _Shared.engines:
            _Shared.engines[name] = get_engine(name)
        return _Shared.engines[name]


def shared_catalogue(path: str | None, aliases: tuple[tuple[str, str], ...] = ()) -> object:
    from pipeline.catalogue import Catalogue

    key = (path, aliases)
    with _Shared.lock:
        if key not in _Shared.catalogues:
            catalogue = Catalogue.load(path, learned_aliases=aliases)
            # Loaded whole, tokenizer included: callers load the shared catalogue at start-up (beside Prefect's
            # server, in each worker), and the first document must not pay for it.
            catalogue.warm_up()
            _Shared.catalogues[key] = catalogue
        return _Shared.catalogues[key]


@dataclass
class Timer:
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds


def read_table(path: Path, source: str, settings: Settings, timer: Timer,
               kept: KeptPages | None = None) -> tuple[Table, int, list[Issue]]:
    """The document's rows as one Table, from a text dump or from page images (OCR or text layer).

    With ``kept``, the page images are kept there (up to its budget) for the crops of flagged fields."""
    head = read_head(path)
    kind = sniff_kind(head)
    if kind == "empty":
        raise InputError("is empty (0 bytes)", source=source)
    if kind == "zip":
        raise InputError("is a zip archive inside a document list; pass the zip itself as an input", source=source)
    if kind == "text":
        started = time.perf_counter()
        decoded = decode_text(load_bytes(path, settings.limits, source), source)
        table = parse_text_dump(decoded.text)
        timer.add("read", time.perf_counter() - started)
        n_pages = max(table.row_pages, default=0)
        return table, n_pages, list(decoded.issues)
    pages: Iterator[PageImage]
    if kind == "pdf":
        pages = iter_pdf_pages(path, source, settings.dpi, settings.limits)
    elif kind in IMAGE_KINDS:
        pages = iter_image_pages(path, source, settings.limits)
    else:
        raise InputError(f"is of an unsupported kind ({kind})", source=source)
    from pipeline.scan import read_pages

    started = time.perf_counter()
    engine = lazy_engine(settings.engine, lambda: shared_engine(settings.engine))
    if kept is not None:
        pages = kept.track(pages)
    result = read_pages(_timed(pages, timer), engine)
    timer.add("scan_total", time.perf_counter() - started)
    for page in result.pages:
        timer.add("ocr", page.ocr_seconds)
    issues = list(result.issues)
    return result.table, len(result.pages), issues


def _timed(pages: Iterator[PageImage], timer: Timer) -> Iterator[PageImage]:
    while True:
        started = time.perf_counter()
        try:
            page = next(pages)
        except StopIteration:
            return
        finally:
            timer.add("render", time.perf_counter() - started)
        yield page


def process_file(path: Path, source: str, settings: Settings, doc_id: str | None = None,
                 aliases: tuple[tuple[str, str], ...] = (), out: Path | None = None) -> DocumentResult:
    """Process one file; never raises for a bad document: the result says ``failed`` and why.

    With ``out``, crops of the flagged fields are written under ``out/crops/`` for the review queue.
    """
    timer = Timer()
    kept = KeptPages() if out is not None else None  # crops are cut from the pages the reader had
    started = time.perf_counter()
    try:
        doc_id = doc_id or sha256_file(path)
    except OSError as exc:
        return DocumentResult(doc_id="", source=source, status=Status.FAILED,
                              issues=(Issue("unreadable", f"{source}: cannot be read ({exc.strerror or exc})"),),
                              error=f"{source}: cannot be read ({exc.strerror or exc})")
    try:
        result = _process(path, source, settings, doc_id, timer, aliases, kept)
    except FormRescueError as exc:
        message = str(exc) if exc.source else f"{source}: {exc}"
        result = DocumentResult(doc_id=doc_id, source=source, status=Status.FAILED,
                                issues=(Issue(exc.code, message),), error=message)
    except (OSError, MemoryError) as exc:
        message = f"{source}: cannot be read ({getattr(exc, 'strerror', None) or exc})"
        result = DocumentResult(doc_id=doc_id, source=source, status=Status.FAILED,
                                issues=(Issue("unreadable", message),), error=message)
    if out is not None and result.status is Status.NEEDS_REVIEW:
        crop_started = time.perf_counter()
        try:
            result = write_crops(result, path, out, settings.dpi, settings.limits, kept)
        except (FormRescueError, OSError) as exc:
            problem = Issue("crops_failed", f"{source}: crops not written ({exc})")
            result = replace(result, issues=(*result.issues, problem))
        timer.add("crops", time.perf_counter() - crop_started)
    timer.add("total", time.perf_counter() - started)
    return replace(result, timings=dict(timer.timings))


def _process(path: Path, source: str, settings: Settings, doc_id: str, timer: Timer,
             aliases: tuple[tuple[str, str], ...], kept: KeptPages | None) -> DocumentResult:
    table, n_pages, issues = read_table(path, source, settings, timer, kept)
    started = time.perf_counter()
    catalogue = shared_catalogue(settings.catalogue, aliases)
    extraction = extract_forms(table, catalogue)  # type: ignore[arg-type]
    issues.extend(extraction.issues)
    if not extraction.forms:
        reason = "; ".join(i.message for i in extraction.issues) or "no form found"
        raise NotAFormError(f"is not a 绩效自评表 ({reason})", source=source)
    forms = tuple(validate_form(normalize_form(f, catalogue, settings.low_confidence))  # type: ignore[arg-type]
                  for f in extraction.forms)
    timer.add("forms", time.perf_counter() - started)
    status = Status.NEEDS_REVIEW if any(f.flags for f in forms) else Status.CLEAN
    return DocumentResult(doc_id=doc_id, source=source, status=status, forms=forms, issues=tuple(issues),
                          n_pages=n_pages)
