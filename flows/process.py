"""The ``process-documents`` flow: the given inputs, one task per document, then the exports.

The flow is thin: listing inputs, hashing, skipping what is done, storing results and exporting are
library calls. Documents run as tasks on a bounded thread pool (ONNX Runtime releases the GIL; one OCR
engine per process is shared by the threads); one document's failure never stops the others.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.config import Settings
from pipeline.datamodel import DocumentResult, Issue, Status
from pipeline.decisions import log_disagreements
from pipeline.ingest import sha256_file
from pipeline.inputs import InputFile, InputProblem, collect_inputs
from pipeline.store import StateStore
from pipeline.workers import run_document, worker_pool
from pipeline.workspace import ExportSummary, export_outputs, locked, work_dir


@dataclass
class RunSummary:
    """What a run did; printed by the CLI and published as a Prefect artifact."""

    documents: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    forms: int = 0
    indicators: int = 0
    review_items: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


ProgressHook = Callable[[str, int, int], None]  # (source, done, total)
_progress_hooks: list[ProgressHook] = []


def add_progress_hook(hook: ProgressHook) -> None:
    """The CLI's progress bar listens here; flows stay free of terminal code."""
    _progress_hooks.append(hook)


def remove_progress_hook(hook: ProgressHook) -> None:
    if hook in _progress_hooks:
        _progress_hooks.remove(hook)


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """A missing or forbidden file will not come back in a second: only other I/O errors are retried."""
    return not isinstance(state.data, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError)


@task(name="hash-file", retries=2, retry_delay_seconds=1, retry_condition_fn=_worth_retrying, cache_policy=NO_CACHE,
      persist_result=False)
def hash_file(path: str) -> str:
    """Content hash (document id). I/O only: worth a retry on a flaky network share."""
    return sha256_file(Path(path))


@task(name="process-document", cache_policy=NO_CACHE, persist_result=False)
def process_document(path: str, source: str, settings: Settings, doc_id: str,
                     aliases: tuple[tuple[str, str], ...], out: str | None = None) -> DocumentResult:
    # In a worker process (time limit, crash isolation) while run_documents holds a pool; else in this thread.
    return run_document(Path(path), source, settings, doc_id, aliases, Path(out) if out else None)


def _problem_result(problem: InputProblem) -> DocumentResult:
    from pipeline.ingest import sha256_bytes

    return DocumentResult(doc_id="unread-" + sha256_bytes(problem.source.encode())[:24], source=problem.source,
                          status=Status.FAILED, issues=(Issue(problem.code, problem.message),), error=problem.message)


def run_documents(files: list[InputFile], problems: list[InputProblem], out: Path, settings: Settings,
                  store: StateStore, force: bool = False, known_ids: Mapping[str, str] | None = None,
                  on_hashed: Callable[[InputFile, str], None] | None = None) -> RunSummary:
    """Hash, skip what is done, process the rest as tasks, store each result as it finishes.

    ``known_ids`` (source -> doc_id) spares hashing files whose identity is already known (an archive's
    unchanged files, a rerun's verified ones); ``on_hashed`` hears of every file hashed here.
    """
    logger = get_run_logger()
    started = time.perf_counter()
    summary = RunSummary(documents=len(files) + len(problems))
    fingerprint = settings.fingerprint()
    known = known_ids or {}
    for problem in problems:
        result = _problem_result(problem)
        store.record_source(problem.source, result.doc_id)
        store.save_result(result, fingerprint)
        summary.failures.append(problem.message)
    todo: list[tuple[InputFile, str]] = []
    queued: set[str] = set()
    for item in files:
        try:
            doc_id = known.get(item.source) or hash_file(str(item.path))
            stat = item.path.stat()
        except OSError as exc:
            result = _problem_result(InputProblem(item.source, f"{item.source}: cannot be read ({exc.strerror or exc})",
                                                  "unreadable"))
            store.record_source(item.source, result.doc_id)
            store.save_result(result, fingerprint)
            summary.failures.append(result.error or "")
            continue
        if on_hashed is not None and item.source not in known:
            on_hashed(item, doc_id)
        store.record_source(item.source, doc_id, stat.st_size, stat.st_mtime)
        if doc_id in queued or (not force and store.is_done(doc_id, fingerprint)):
            summary.skipped += 1  # done before, or a copy of a file already queued in this run
            continue
        queued.add(doc_id)
        todo.append((item, doc_id))

    aliases = tuple(store.aliases())
    total = len(todo)
    futures = {}
    with worker_pool(settings, aliases):
        for item, doc_id in todo:
            store.mark_started(doc_id, item.source, fingerprint)
            futures[process_document.submit(str(item.path), item.source, settings, doc_id, aliases, str(out))] = (
                item, doc_id)
        for done, future in enumerate(as_completed(list(futures)), start=1):
            item, doc_id = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a bug or a lost worker hits one document only: record it, go on
                logger.error("processing %s crashed: %s: %s", item.source, type(exc).__name__, exc)
                result = _crashed_result(item.source, doc_id, exc)
            store.save_result(result, fingerprint)
            for disagreement in log_disagreements(store, result):  # the stored decision still wins
                logger.warning("%s: %s: %s", item.source, disagreement.decision.field, disagreement.note)
            summary.processed += 1
            if result.status is Status.FAILED:
                summary.failures.append(result.error or f"{item.source}: failed")
                logger.warning("failed: %s", result.error)
            for hook in list(_progress_hooks):
                hook(item.source, done, total)
    summary.seconds = time.perf_counter() - started
    return summary


def _crashed_result(source: str, doc_id: str, exc: BaseException) -> DocumentResult:
    message = f"{source}: internal error while processing ({type(exc).__name__}: {exc}); rerun it once fixed"
    return DocumentResult(doc_id=doc_id, source=source, status=Status.FAILED,
                          issues=(Issue("internal_error", message),), error=message)


def finish(out: Path, store: StateStore, summary: RunSummary, run_kind: str, regenerate: bool = True) -> RunSummary:
    """Regenerate the exports from the store and publish the run's artifact. ``regenerate=False`` (a run that
    changed nothing) keeps the exports as they are, if present, and only counts them: their cost grows with
    every document the folder holds."""
    from pipeline.archive import exported_counts

    counted = None if regenerate else exported_counts(out, store)
    exported: ExportSummary = counted or export_outputs(out, store)
    summary.forms = exported.forms
    summary.indicators = exported.indicators
    summary.review_items = exported.review_items
    summary.failed = exported.failed
    summary.outputs = exported.files
    summary.reasons = _review_reasons(out)
    create_markdown_artifact(key=f"formrescue-{run_kind}", markdown=summary_markdown(summary, out),
                             description=f"formrescue {run_kind} into {out}")
    return summary


def _review_reasons(out: Path) -> dict[str, int]:
    from pipeline.export import read_csv

    counter: Counter[str] = Counter()
    queue = out / "review_queue.csv"
    if queue.exists():
        for row in read_csv(queue):
            for code in (row.get("reason") or "").split(";"):
                if code:
                    counter[code] += 1
    return dict(counter.most_common())


def summary_markdown(summary: RunSummary, out: Path) -> str:
    lines = [
        f"# formrescue run into `{out}`",
        "",
        "| documents | processed | skipped (unchanged) | failed | forms | indicators | review items | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {summary.documents} | {summary.processed} | {summary.skipped} | {summary.failed} | {summary.forms} | "
        f"{summary.indicators} | {summary.review_items} | {summary.seconds:.1f} |",
        "",
    ]
    if summary.reasons:
        lines += ["## Review items by reason", "", "| reason | items |", "|---|---:|"]
        lines += [f"| {reason} | {count} |" for reason, count in summary.reasons.items()]
        lines.append("")
    if summary.failures:
        lines += ["## Failures", ""] + [f"- {message}" for message in summary.failures] + [""]
    return "\n".join(lines)


def task_runner(workers: int, dask_address: str | None = None) -> Any:
    """Document tasks on a thread pool of ``workers``, or on an existing Dask cluster (prefect-dask)."""
    if dask_address:
        from flows import prefect_env
        from pipeline.errors import FormRescueError

        if prefect_env.embedded():
            # Workers cannot reach a temporary server: each would start its own, on one SQLite file.
            raise FormRescueError("--dask-address needs a Prefect server: start one (prefect server start) and set "
                                  "PREFECT_API_URL here and in the environment of every Dask worker")
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise FormRescueError("--dask-address needs prefect-dask: pip install 'formrescue[dask]'") from exc
        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=max(1, workers))


def with_workers(workers: int, dask_address: str | None = None, flow_: Any = None) -> Any:
    """A flow (process-documents by default) with a thread pool of ``workers`` (or a Dask cluster) for its
    document tasks."""
    return (flow_ or process_documents).with_options(task_runner=task_runner(workers, dask_address))


@flow(name="process-documents", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def process_documents(inputs: list[str], out: str, engine: str = "rapidocr", workers: int = 2, force: bool = False,
                      dpi: int = 300) -> dict[str, Any]:
    """Process the given files, folders or zips into OUT (documents already done are skipped)."""
    settings = Settings.from_env(engine=engine, workers=workers, dpi=dpi)
    out_path = Path(out)
    with locked(out_path):
        store = StateStore.for_output(out_path)
        run_id = uuid.uuid4().hex
        store.start_run(run_id, "process")
        files, problems = collect_inputs(inputs, work_dir(out_path), settings.limits)
        summary = run_documents(files, problems, out_path, settings, store, force)
        summary = finish(out_path, store, summary, "process")
        store.finish_run(run_id, summary.to_dict())
    return summary.to_dict()


def print_summary(summary: dict[str, Any], out: Path, stream: Any = None) -> None:
    stream = stream or sys.stdout
    print(f"documents {summary['documents']} (processed {summary['processed']}, unchanged {summary['skipped']}, "
          f"failed {summary['failed']}) · forms {summary['forms']} · indicators {summary['indicators']} · "
          f"review items {summary['review_items']} · {summary['seconds']:.1f} s", file=stream)
    for reason, count in list(summary.get("reasons", {}).items())[:8]:
        print(f"  review: {count:4d} × {reason}", file=stream)
    failures = summary.get("failures", [])
    for message in failures[:20]:
        print(f"  failed: {message}", file=stream)
    if len(failures) > 20:
        print(f"  … and {len(failures) - 20} more failed: each is listed in review_queue.csv", file=stream)
    print(f"outputs in {out}: forms.jsonl, projects.csv, indicators.csv, review_queue.xlsx (open this one in "
          "Excel/WPS to review), review_queue.csv", file=stream)
