"""An output folder as a workspace: its lock, its state store, and exports regenerated from the store.

Every run writes each finished document to the store first and regenerates the export files from the
store at the end (and after each review apply), so the files always describe every document the folder
has seen, with reviewers' decisions applied, and a crash mid-run never leaves a half-written file.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.datamodel import DocumentResult, Status
from pipeline.errors import FormRescueError
from pipeline.export import export
from pipeline.store import StateStore

LOCK_NAME = ".formrescue.lock"


class WorkspaceBusy(FormRescueError):
    code = "busy"


@contextmanager
def locked(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold the output folder's lock for a run; a second run on the same folder is refused (or waits)."""
    out.mkdir(parents=True, exist_ok=True)
    handle = (out / LOCK_NAME).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise WorkspaceBusy(f"another formrescue run is using this output folder ({holder}); wait for it to "
                                    "finish or use another --out", source=str(out)) from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        # Temporary files of an export killed half-way (atomic_writer's ".NAME.*.tmp"): only a lock holder writes.
        for stale in out.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        handle.close()


def work_dir(out: Path) -> Path:
    return out / ".work"


@dataclass
class ExportSummary:
    documents: int = 0
    forms: int = 0
    indicators: int = 0
    review_items: int = 0
    failed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)


def current_results(store: StateStore) -> list[DocumentResult]:
    """Every current document's result with reviewers' decisions applied."""
    from pipeline.decisions import apply_stored_decisions

    results = []
    for doc_id, source in store.current_documents():
        result = store.result(doc_id)
        if result is None:
            continue
        result, _ = apply_stored_decisions(result, store.decisions(doc_id))
        results.append(replace(result, source=source) if result.source != source else result)
    return results


def export_outputs(out: Path, store: StateStore) -> ExportSummary:
    results = current_results(store)
    counts = export(out, results)
    summary = ExportSummary(documents=len(results), forms=counts["forms"], review_items=counts["review_items"],
                            indicators=counts["indicators"], files=counts)
    for result in results:
        summary.by_status[result.status.value] = summary.by_status.get(result.status.value, 0) + 1
        summary.failed += result.status is Status.FAILED
    return summary
