"""The ``apply-review`` flow: a reviewed queue (CSV or XLSX) back into an output folder.

Thin: checking the file, storing its decisions and learned aliases, and regenerating every output from
the store are library calls (``pipeline/review_io.py``, ``pipeline/workspace.py``). A file with any
problem is refused whole, before anything is stored or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from pipeline.errors import InputError
from pipeline.review_io import ApplyReport, apply_queue
from pipeline.store import STORE_NAME, StateStore
from pipeline.workspace import export_outputs, locked


@flow(name="apply-review", log_prints=False)
def apply_review(queue: str, out: str, reviewer: str | None = None) -> dict[str, Any]:
    """Apply the decisions of a reviewed ``queue`` file to OUT and regenerate its outputs.

    ``reviewer`` is recorded for rows whose reviewer column is empty (default: the user running it).
    """
    logger = get_run_logger()
    out_path = Path(out)
    if not (out_path / STORE_NAME).exists():
        raise InputError("no state store here: run or ingest into this folder first", source=out)
    with locked(out_path):
        store = StateStore.for_output(out_path)
        report = apply_queue(Path(queue), store, applied_by=reviewer)
        exported = export_outputs(out_path, store)
    logger.info("%s: %d decisions stored, %d unchanged, %d rows still open, %d aliases learned", queue,
                report.stored, report.unchanged, report.still_open, report.aliases)
    summary = {**report.to_dict(), "review_items": exported.review_items, "forms": exported.forms,
               "by_status": dict(exported.by_status)}
    create_markdown_artifact(key="formrescue-apply-review", markdown=_markdown(report, exported.review_items, out),
                             description=f"review applied to {out}")
    return summary


def _markdown(report: ApplyReport, open_items: int, out: str) -> str:
    decided = ", ".join(f"{n} {d}" for d, n in sorted(report.by_decision.items())) or "none"
    return "\n".join([
        f"# Review applied to `{out}`",
        "",
        f"From `{report.queue}`: {report.stored} decisions stored ({decided}), {report.unchanged} already stored, "
        f"{report.still_open} rows left open, {report.aliases} catalogue aliases learned. "
        f"{open_items} items are open in the regenerated queue.",
    ])
