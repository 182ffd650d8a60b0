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
from collections.abc import Callable
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
from pipeline.ingest import sha256_file
from pipeline.inputs import InputFile, InputProblem, collect_inputs
from pipeline.process import process_file
from pipeline.store import StateStore
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


@task(name="hash-file", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, persist_result=False)
def hash_file(path: str) -> str:
    """Content hash (document id). I/O only: worth a retry on a flaky network share."""
    return sha256_file(Path(path))


@task(name="process-document", cache_policy=NO_CACHE, persist_result=False)
def process_document(path: str, source: str, settings: Settings, doc_id: str,
                     aliases: tuple[tuple[str, str], ...]) -> DocumentResult:
    return process_file(Path(path), source, settings, doc_id=doc_id, aliases=aliases)


def _problem_result(problem: InputProblem) -> DocumentResult:
    from pipeline.ingest import sha256_bytes

    return DocumentResult(doc_id="unread-" + sha256_bytes(problem.source.encode())[:24], source=problem.source,
                          status=Status.FAILED, issues=(Issue(problem.code, problem.message),), error=problem.message)


def run_documents(files: list[InputFile], problems: list[InputProblem], out: Path, settings: Settings,
                  store: StateStore, force: bool = False) -> RunSummary:
    """Hash, skip what is done, process the rest as tasks, store each result as it finishes."""
    logger = get_run_logger()
    started = time.perf_counter()
    summary = RunSummary(documents=len(files) + len(problems))
    fingerprint = settings.fingerprint()
    for problem in problems:
        result = _problem_result(problem)
        store.record_source(problem.source, result.doc_id)
        store.save_result(result, fingerprint)
        summary.failures.append(problem.message)
    todo: list[tuple[InputFile, str]] = []
    for item in files:
        try:
            doc_id = hash_file(str(item.path))
        except OSError as exc:
            result = _problem_result(InputProblem(item.source, f"{item.source}: cannot be read ({exc.strerror or exc})",
                                                  "unreadable"))
            store.record_source(item.source, result.doc_id)
            store.save_result(result, fingerprint)
            summary.failures.append(result.error or "")
            continue
        stat = item.path.stat()
        store.record_source(item.source, doc_id, stat.st_size, stat.st_mtime)
        if not force and store.is_done(doc_id, fingerprint):
            summary.skipped += 1
            continue
        todo.append((item, doc_id))

    aliases = tuple(store.aliases())
    total = len(todo)
    futures = {}
    for item, doc_id in todo:
        store.mark_started(doc_id, item.source, fingerprint)
        futures[process_document.submit(str(item.path), item.source, settings, doc_id, aliases)] = item
    done = 0
    for future in as_completed(list(futures)):
        item = futures[future]
        result = future.result()
        store.save_result(result, fingerprint)
        done += 1
        summary.processed += 1
        if result.status is Status.FAILED:
            summary.failures.append(result.error or f"{item.source}: failed")
            logger.warning("failed: %s", result.error)
        for hook in list(_progress_hooks):
            hook(item.source, done, total)
    summary.seconds = time.perf_counter() - started
    return summary


def finish(out: Path, store: StateStore, summary: RunSummary, run_kind: str) -> RunSummary:
    """Regenerate the exports from the store and publish the run's artifact."""
    exported: ExportSummary = export_outputs(out, store)
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


def with_workers(workers: int) -> Any:
    """The flow with a thread pool of ``workers`` for its document tasks."""
    return process_documents.with_options(task_runner=ThreadPoolTaskRunner(max_workers=max(1, workers)))


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
    for message in summary.get("failures", [])[:20]:
        print(f"  failed: {message}", file=stream)
    print(f"outputs in {out}: forms.jsonl, projects.csv, indicators.csv, review_queue.csv", file=stream)
