"""Archive ingestion and reruns as library calls: which files are unchanged, which documents to process again.

The flows in ``flows/archive.py`` call these; nothing here imports Prefect.

Unchanged files. A document's identity is the SHA-256 of its bytes, so hashing every file of the archive is
always correct. To spare a nightly run from reading a whole archive again, a file whose size, mtime, ctime,
inode and device all equal those seen when it was last hashed is taken to hold the same bytes (git's index
does the same). ctime cannot be set by user tools (``cp -p``, ``touch -r`` and ``rsync -t`` set mtime only)
and a file replaced by another gets a new inode, so any write changes the signature. A signature taken
less than ``RACY_SECONDS`` after the file last changed is not trusted: a second write within the same
timestamp tick would keep it. ``rehash=True`` verifies every file regardless.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Limits
from pipeline.datamodel import Status
from pipeline.errors import InputError
from pipeline.ingest import sha256_file
from pipeline.inputs import InputFile, InputProblem, collect_inputs
from pipeline.store import StateStore

if TYPE_CHECKING:
    from pipeline.workspace import ExportSummary

RACY_SECONDS = 2.0
RERUN_STATUSES = tuple(s.value for s in Status)
MIN_ID_PREFIX = 8

@dataclass(frozen=True, slots=True)
class FileSignature:
    """What ``stat`` says of a file, and when it was asked."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int
    taken_ns: int

    @staticmethod
    def of(path: Path) -> FileSignature:
        taken = time.time_ns()
        info = path.stat()
        return FileSignature(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev, taken)

    def same_file_state(self, other: FileSignature) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode, self.device) == (
            other.size, other.mtime_ns, other.ctime_ns, other.inode, other.device)

    def trusted(self) -> bool:
        """Taken long enough after the file's last change that no same-tick write can hide behind it."""
        return self.taken_ns - max(self.mtime_ns, self.ctime_ns) >= RACY_SECONDS * 1e9


class SignatureIndex:
    """Signatures of files hashed before, kept in the output folder's state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def load(self) -> dict[str, tuple[str, FileSignature]]:
        known = self.store.file_signatures()
        return {path: (doc_id, FileSignature(*fields)) for path, (doc_id, fields) in known.items()}

    def save(self, entries: Iterable[tuple[str, str, FileSignature]]) -> int:
        """Record (path, doc_id, signature taken before hashing) in one transaction."""
        rows = [(path, doc_id, s.size, s.mtime_ns, s.ctime_ns, s.inode, s.device, s.taken_ns)
                for path, doc_id, s in entries]
        self.store.save_file_signatures(rows)
        return len(rows)


def on_disk(item: InputFile) -> bool:
    """A file of the archive itself (a zip member is unpacked afresh each time: no stable signature)."""
    return "!" not in item.source and str(item.path) == item.source


@dataclass
class ArchiveScan:
    """An archive listed for ingestion: its files, listing problems, and what is known without hashing."""

    files: list[InputFile]
    problems: list[InputProblem]
    known_ids: dict[str, str] = field(default_factory=dict)  # source -> doc_id, signature unchanged
    signatures: dict[str, FileSignature] = field(default_factory=dict)  # source -> signature before hashing

    def split_done(self, done: set[str]) -> tuple[list[InputFile], int]:
        """Files still to look at, and how many are unchanged and done already (nothing to do, not even to
        record: their path still points at their document)."""
        rest = [item for item in self.files if self.known_ids.get(item.source) not in done]
        return rest, len(self.files) - len(rest)

    def signature_updates(self, hashed: dict[str, str]) -> list[tuple[str, str, FileSignature]]:
        """Signatures worth recording for files hashed in this run: only if the file did not change while
        it was being hashed (otherwise the hash may be of half-written bytes and must be redone next time)."""
        updates = []
        for source, doc_id in hashed.items():
            before = self.signatures.get(source)
            if before is None:
                continue
            try:
                after = FileSignature.of(Path(source))
            except OSError:
                continue  # gone already: nothing to remember
            if before.same_file_state(after):
                updates.append((source, doc_id, before))
        return updates


def scan_archive(archive: str, work_dir: Path, limits: Limits, store: StateStore, rehash: bool = False
                 ) -> ArchiveScan:
    """List a folder or zip for ingestion; files whose signature is unchanged get their document id without
    being read."""
    if not Path(archive).exists():
        raise InputError("archive not found (is the share mounted?)", source=archive)
    files, problems = collect_inputs([archive], work_dir, limits)
    scan = ArchiveScan(files, problems)
    index = SignatureIndex(store)
    known = {} if rehash else index.load()
    for item in files:
        if not on_disk(item):
            continue
        try:
            signature = FileSignature.of(item.path)
        except OSError:
            continue  # the hash step reports the unreadable file
        scan.signatures[item.source] = signature
        previous = known.get(item.source)
        if previous is not None and previous[1].trusted() and previous[1].same_file_state(signature):
            scan.known_ids[item.source] = previous[0]
    return scan


# -- reruns


@dataclass(frozen=True, slots=True)
class Selection:
    """Documents chosen for a rerun: (doc_id, paths it was seen under, newest first)."""

    documents: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def doc_ids(self) -> list[str]:
        return [doc_id for doc_id, _ in self.documents]


def resolve_ids(store: StateStore, given: Iterable[str]) -> list[str]:
    """Full document ids from ids or unique prefixes (as shown in forms.jsonl); unknown ones are an error."""
    known = [row.doc_id for row in store.documents()]
    resolved: list[str] = []
    problems: list[str] = []
    for text in given:
        text = text.strip()
        if text in known:
            resolved.append(text)
            continue
        matches = [doc_id for doc_id in known if doc_id.startswith(text)] if len(text) >= MIN_ID_PREFIX else []
        if len(matches) == 1:
            resolved.append(matches[0])
        elif matches:
            problems.append(f"{text}: matches {len(matches)} documents; give more characters")
        else:
            problems.append(f"{text}: no such document in this output folder"
                            + (f" (give at least {MIN_ID_PREFIX} characters)" if len(text) < MIN_ID_PREFIX else ""))
    if problems:
        raise InputError("cannot rerun: " + "; ".join(problems), source=str(store.path.parent))
    return list(dict.fromkeys(resolved))


def select_documents(store: StateStore, doc_ids: Iterable[str] | None = None, status: str | None = None,
                     source_glob: str | None = None, everything: bool = False) -> Selection:
    """The documents a rerun covers. Criteria combine (a document must meet each given one); ids select any
    document the folder has seen, the others choose among current documents (those a path still points at).
    ``source_glob`` is matched with fnmatch (``*`` also crosses ``/``) against every path of a document."""
    ids = list(doc_ids or [])
    if not (ids or status or source_glob or everything):
        raise InputError("say which documents to rerun: document ids, a status, a source glob, or all")
    if status is not None and status not in RERUN_STATUSES:
        raise InputError(f"unknown status {status!r}; use one of {', '.join(RERUN_STATUSES)}")
    rows = {row.doc_id: row for row in store.documents()}
    candidates = resolve_ids(store, ids) if ids else [doc_id for doc_id, _ in store.current_documents()]
    chosen: list[tuple[str, tuple[str, ...]]] = []
    for doc_id in candidates:
        row = rows.get(doc_id)
        if row is None:
            continue
        if status is not None and row.status.value != status:
            continue
        sources = tuple(store.sources_of(doc_id)) or (row.source,)
        if source_glob is not None and not any(fnmatch.fnmatchcase(s, source_glob) for s in sources):
            continue
        chosen.append((doc_id, sources))
    return Selection(tuple(chosen))


def is_unread(doc_id: str) -> bool:
    """A record of an input that could not be read at all (no bytes, so no content hash)."""
    return doc_id.startswith("unread-")


@dataclass
class RerunPlan:
    """What a rerun processes: files with their verified document ids, and what cannot be rerun."""

    files: list[InputFile] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    known_ids: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _root(source: str) -> str:
    return source.split("!", 1)[0]


def locate(selection: Selection, store: StateStore, work_dir: Path, limits: Limits) -> RerunPlan:
    """Find each selected document's bytes again: the newest path it was seen under that still holds exactly
    those bytes (verified by hash, or by an unchanged signature). A document found nowhere is listed in
    ``missing`` and its stored result kept, never replaced by a failure."""
    roots = list(dict.fromkeys(_root(s) for _, sources in selection.documents for s in sources
                               if Path(_root(s)).exists()))
    files, problems = collect_inputs(roots, work_dir, limits) if roots else ([], [])
    by_source = {item.source: item for item in files}
    problem_by_source = {p.source: p for p in problems}
    signatures = SignatureIndex(store).load()
    plan = RerunPlan()
    for doc_id, sources in selection.documents:
        placed = False
        for source in sources:
            item = by_source.get(source)
            if item is None:
                continue
            if is_unread(doc_id):
                plan.files.append(item)  # readable now: processed under its real content hash
                placed = True
                break
            if _holds(item, doc_id, signatures):
                plan.files.append(item)
                plan.known_ids[item.source] = doc_id
                placed = True
                break
        if placed:
            continue
        problem = next((problem_by_source[s] for s in sources if s in problem_by_source), None)
        if is_unread(doc_id) and problem is not None:
            plan.problems.append(problem)  # still unreadable: recorded again with today's reason
            continue
        plan.missing.append(f"{sources[0]}: document {doc_id[:12]} is no longer at any path it was seen under "
                            "(moved, changed or deleted); its stored result is kept")
    return plan


def _holds(item: InputFile, doc_id: str, signatures: dict[str, tuple[str, FileSignature]]) -> bool:
    try:
        if on_disk(item) and item.source in signatures:
            known_id, signature = signatures[item.source]
            if known_id == doc_id and signature.trusted() and signature.same_file_state(FileSignature.of(item.path)):
                return True
        return sha256_file(item.path) == doc_id
    except OSError:
        return False


# -- exports left as they are


def exported_counts(out: Path, store: StateStore) -> ExportSummary | None:
    """What the export files in ``out`` hold, counted without regenerating them (None if one is missing).

    For a run that changed nothing in the store: regenerating decodes every stored result again."""
    from pipeline.export import read_csv
    from pipeline.workspace import ExportSummary

    names = ("forms.jsonl", "projects.csv", "indicators.csv", "review_queue.csv")
    if not all((out / name).exists() for name in names):
        return None
    with (out / "forms.jsonl").open("rb") as handle:
        forms = sum(1 for line in handle if line.strip())
    indicators = len(read_csv(out / "indicators.csv"))
    review_items = len(read_csv(out / "review_queue.csv"))
    current = {doc_id for doc_id, _ in store.current_documents()}
    summary = ExportSummary(documents=len(current), forms=forms, indicators=indicators, review_items=review_items,
                            files={"forms": forms, "projects": forms, "indicators": indicators,
                                   "review_items": review_items})
    for row in store.documents():
        if row.doc_id in current:
            summary.by_status[row.status.value] = summary.by_status.get(row.status.value, 0) + 1
    summary.failed = summary.by_status.get(Status.FAILED.value, 0)
    return summary
