"""The state store: one SQLite file per output folder.

It records every document seen (content hash, status, timings, error, the extracted result), which
paths point at which document (so a renamed file is recognised by its hash), reviewers' decisions with
an append-only audit trail, and aliases learned from those decisions. Each document's result is
committed as soon as it is done, so a crash loses nothing already finished.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.datamodel import DocumentResult, Status

SCHEMA_VERSION = 1
STORE_NAME = "formrescue.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    error TEXT,
    n_pages INTEGER NOT NULL DEFAULT 0,
    n_forms INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    timings TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sources_doc ON sources(doc_id);
CREATE TABLE IF NOT EXISTS decisions (
    doc_id TEXT NOT NULL,
    field TEXT NOT NULL,
    review_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reviewer TEXT,
    note TEXT,
    decided_at REAL NOT NULL,
    PRIMARY KEY (doc_id, field)
);
CREATE TABLE IF NOT EXISTS decision_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    field TEXT NOT NULL,
    review_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reviewer TEXT,
    note TEXT,
    decided_at REAL NOT NULL,
    event TEXT NOT NULL DEFAULT 'decided'
);
CREATE TABLE IF NOT EXISTS learned_aliases (
    variant TEXT PRIMARY KEY,
    entry_id TEXT NOT NULL,
    doc_id TEXT,
    reviewer TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS file_signatures (
    path TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    taken_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    summary TEXT
);
"""


@dataclass(frozen=True, slots=True)
class DocumentRow:
    doc_id: str
    source: str
    status: Status
    fingerprint: str
    error: str | None
    n_pages: int
    n_forms: int
    seconds: float | None
    timings: dict[str, float]
    attempts: int


@dataclass(frozen=True, slots=True)
class Decision:
    doc_id: str
    field: str
    review_id: str
    decision: str  # accept | correct | reject
    old_value: str | None
    new_value: str | None
    reviewer: str | None
    note: str | None
    decided_at: float


class StateStore:
    """A thin, typed layer over the SQLite file. Safe to open from several threads (one connection each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # executescript commits on its own, so the schema gets a connection outside _connect's transaction.
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            db.execute("PRAGMA busy_timeout=60000")
            db.executescript(_SCHEMA)
        finally:
            db.close()
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @staticmethod
    def for_output(out: Path) -> StateStore:
        return StateStore(out / STORE_NAME)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=60000")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- documents

    def document(self, doc_id: str) -> DocumentRow | None:
        with self._connect() as db:
            row = db.execute("SELECT doc_id, source, status, fingerprint, error, n_pages, n_forms, seconds, timings, "
                             "attempts FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return _document_row(row) if row else None

    def documents(self, status: Status | None = None) -> list[DocumentRow]:
        query = ("SELECT doc_id, source, status, fingerprint, error, n_pages, n_forms, seconds, timings, attempts "
                 "FROM documents")
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status.value,)
        with self._connect() as db:
            return [_document_row(r) for r in db.execute(query + " ORDER BY source, doc_id", args).fetchall()]

    def mark_started(self, doc_id: str, source: str, fingerprint: str) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO documents(doc_id, source, status, fingerprint, started_at, attempts) "
                "VALUES (?, ?, 'running', ?, ?, 1) "
                "ON CONFLICT(doc_id) DO UPDATE SET source = excluded.source, status = 'running', "
                "fingerprint = excluded.fingerprint, started_at = excluded.started_at, attempts = attempts + 1",
                (doc_id, source, fingerprint, now),
            )

    def save_result(self, result: DocumentResult, fingerprint: str) -> None:
        """Commit one finished document (its raw extraction, before reviewers' decisions)."""
        now = time.time()
        payload = json.dumps(result.to_dict(), ensure_ascii=False)
        with self._connect() as db:
            db.execute(
                "INSERT INTO documents(doc_id, source, status, fingerprint, error, n_pages, n_forms, started_at, "
                "finished_at, seconds, timings, result, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT(doc_id) DO UPDATE SET source = excluded.source, status = excluded.status, "
                "fingerprint = excluded.fingerprint, error = excluded.error, n_pages = excluded.n_pages, "
                "n_forms = excluded.n_forms, finished_at = excluded.finished_at, seconds = excluded.seconds, "
                "timings = excluded.timings, result = excluded.result",
                (result.doc_id, result.source, result.status.value, fingerprint, result.error, result.n_pages,
                 len(result.forms), now - result.timings.get("total", 0.0), now, result.timings.get("total"),
                 json.dumps(result.timings), payload),
            )

    def result(self, doc_id: str) -> DocumentResult | None:
        with self._connect() as db:
            row = db.execute("SELECT result FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return DocumentResult.from_dict(json.loads(row[0])) if row and row[0] else None

    def is_done(self, doc_id: str, fingerprint: str) -> bool:
        """Finished under the same settings (a failed document counts as done: rerun it explicitly)."""
        with self._connect() as db:
            row = db.execute("SELECT status, fingerprint, result FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return bool(row) and row[0] != "running" and row[1] == fingerprint and row[2] is not None

    def done_ids(self, fingerprint: str) -> set[str]:
        """Documents finished under ``fingerprint``, in one query: :meth:`is_done` for a whole archive."""
        with self._connect() as db:
            rows = db.execute("SELECT doc_id FROM documents WHERE status != 'running' AND fingerprint = ? "
                              "AND result IS NOT NULL", (fingerprint,)).fetchall()
        return {row[0] for row in rows}

    # -- sources

    def record_source(self, path: str, doc_id: str, size: int | None = None, mtime: float | None = None) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO sources(path, doc_id, size, mtime, seen_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET doc_id = excluded.doc_id, size = excluded.size, "
                "mtime = excluded.mtime, seen_at = excluded.seen_at",
                (path, doc_id, size, mtime, time.time()),
            )

    def current_documents(self) -> list[tuple[str, str]]:
        """(doc_id, source) of every document some known path still points at, by source path.

        A path whose file changed points at the new content's document, so the old one drops out; a
        renamed file keeps its document, shown under the path seen last.
        """
        with self._connect() as db:
            rows = db.execute(
                "SELECT s.doc_id, s.path FROM sources s JOIN documents d ON d.doc_id = s.doc_id "
                "WHERE d.result IS NOT NULL ORDER BY s.seen_at DESC, s.path"
            ).fetchall()
        latest: dict[str, str] = {}
        for doc_id, path in rows:
            latest.setdefault(doc_id, path)
        return sorted(((d, p) for d, p in latest.items()), key=lambda item: (item[1], item[0]))

    def sources_of(self, doc_id: str) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT path FROM sources WHERE doc_id = ? ORDER BY seen_at DESC",
                                             (doc_id,)).fetchall()]

    def file_signatures(self) -> dict[str, tuple[str, tuple[int, int, int, int, int, int]]]:
        """path -> (doc_id, (size, mtime_ns, ctime_ns, inode, device, taken_ns)) of files hashed before."""
        with self._connect() as db:
            rows = db.execute("SELECT path, doc_id, size, mtime_ns, ctime_ns, inode, device, taken_ns "
                              "FROM file_signatures").fetchall()
        return {row[0]: (row[1], tuple(row[2:])) for row in rows}

    def save_file_signatures(self, rows: list[tuple[str, str, int, int, int, int, int, int]]) -> None:
        """Record (path, doc_id, size, mtime_ns, ctime_ns, inode, device, taken_ns) in one transaction."""
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO file_signatures(path, doc_id, size, mtime_ns, ctime_ns, inode, "
                           "device, taken_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # -- decisions

    def save_decisions(self, decisions: list[Decision]) -> None:
        """Store decisions (all or none) and append each to the audit trail."""
        with self._connect() as db:
            for d in decisions:
                values = (d.doc_id, d.field, d.review_id, d.decision, d.old_value, d.new_value, d.reviewer, d.note,
                          d.decided_at)
                db.execute(
                    "INSERT INTO decisions(doc_id, field, review_id, decision, old_value, new_value, reviewer, note, "
                    "decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(doc_id, field) DO UPDATE SET "
                    "review_id = excluded.review_id, decision = excluded.decision, old_value = excluded.old_value, "
                    "new_value = excluded.new_value, reviewer = excluded.reviewer, note = excluded.note, "
                    "decided_at = excluded.decided_at", values)
                db.execute(
                    "INSERT INTO decision_log(doc_id, field, review_id, decision, old_value, new_value, reviewer, "
                    "note, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def decisions(self, doc_id: str | None = None) -> list[Decision]:
        query = ("SELECT doc_id, field, review_id, decision, old_value, new_value, reviewer, note, decided_at "
                 "FROM decisions")
        args: tuple[Any, ...] = ()
        if doc_id is not None:
            query += " WHERE doc_id = ?"
            args = (doc_id,)
        with self._connect() as db:
            return [Decision(*row) for row in db.execute(query + " ORDER BY doc_id, field", args).fetchall()]

    def log_event(self, decision: Decision, event: str, note: str) -> None:
        """Append an event about a stored decision (e.g. a rerun that now reads a different value)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO decision_log(doc_id, field, review_id, decision, old_value, new_value, reviewer, note, "
                "decided_at, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (decision.doc_id, decision.field, decision.review_id, decision.decision, decision.old_value,
                 decision.new_value, decision.reviewer, note, time.time(), event))

    def decision_log(self, doc_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM decision_log"
        args: tuple[Any, ...] = ()
        if doc_id is not None:
            query += " WHERE doc_id = ?"
            args = (doc_id,)
        with self._connect() as db:
            cursor = db.execute(query + " ORDER BY id", args)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- learned aliases

    def add_alias(self, variant: str, entry_id: str, doc_id: str | None, reviewer: str | None) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO learned_aliases(variant, entry_id, doc_id, reviewer, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(variant) DO UPDATE SET entry_id = excluded.entry_id, doc_id = excluded.doc_id, "
                "reviewer = excluded.reviewer, created_at = excluded.created_at",
                (variant, entry_id, doc_id, reviewer, time.time()))

    def aliases(self) -> list[tuple[str, str]]:
        with self._connect() as db:
            return [(r[0], r[1]) for r in db.execute("SELECT variant, entry_id FROM learned_aliases ORDER BY variant")]

    # -- runs

    def start_run(self, run_id: str, kind: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO runs(run_id, kind, started_at) VALUES (?, ?, ?)",
                       (run_id, kind, time.time()))

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                       (time.time(), json.dumps(summary, ensure_ascii=False), run_id))


def _document_row(row: tuple[Any, ...]) -> DocumentRow:
    doc_id, source, status, fingerprint, error, n_pages, n_forms, seconds, timings, attempts = row
    return DocumentRow(
        doc_id=doc_id,
        source=source,
        status=Status(status) if status in {s.value for s in Status} else Status.FAILED,
        fingerprint=fingerprint,
        error=error,
        n_pages=n_pages,
        n_forms=n_forms,
        seconds=seconds,
        timings=json.loads(timings or "{}"),
        attempts=attempts,
    )
