"""The ``ingest-archive`` and ``rerun`` flows, and the deployments ``formrescue serve`` offers.

Both flows are thin: listing, change detection, choosing and locating documents are library calls
(``pipeline/archive.py``); processing, storing and exporting are the process-documents flow's own steps
(``run_documents`` and ``finish``), so every way in writes the same outputs in the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.process import finish, run_documents, with_workers
from pipeline.archive import SignatureIndex, locate, scan_archive, select_documents
from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.store import STORE_NAME, StateStore
from pipeline.workspace import locked, work_dir


def _run_id() -> str:
    """The Prefect flow run's id, so a store's run can be found in the UI (and the other way round)."""
    return str(flow_run.id or uuid.uuid4().hex)


@flow(name="ingest-archive", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def ingest_archive(archive: str, out: str, engine: str = "rapidocr", workers: int = 2, dpi: int = 300,
                   rehash: bool = False) -> dict[str, Any]:
    """Process the new and changed files of a folder or zip into OUT; files already done are recognised by
    their content hash (a renamed or moved file too) and skipped. ``rehash`` hashes every file instead of
    trusting unchanged file signatures."""
    logger = get_run_logger()
    settings = Settings.from_env(engine=engine, workers=workers, dpi=dpi)
    out_path = Path(out)
    with locked(out_path):
        store = StateStore.for_output(out_path)
        run_id = _run_id()
        store.start_run(run_id, "ingest")
        scan = scan_archive(archive, work_dir(out_path), settings.limits, store, rehash=rehash)
        files, unchanged = scan.split_done(store.done_ids(settings.fingerprint()))
        hashed: dict[str, str] = {}
        summary = run_documents(files, scan.problems, out_path, settings, store, known_ids=scan.known_ids,
                                on_hashed=lambda item, doc_id: hashed.__setitem__(item.source, doc_id))
        summary.documents += unchanged
        summary.skipped += unchanged
        SignatureIndex(store).save(scan.signature_updates(hashed))
        logger.info("%s: %d files, %d unchanged by signature, %d hashed, %d processed", archive, len(scan.files),
                    len(scan.known_ids), len(hashed), summary.processed)
        # Nothing new in the store (no result, no failure, no path newly hashed): the exports already say it all.
        changed = bool(summary.processed or scan.problems or hashed)
        summary = finish(out_path, store, summary, "ingest", regenerate=changed)
        store.finish_run(run_id, summary.to_dict())
    return summary.to_dict()


@flow(name="rerun", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def rerun(out: str, doc_ids: list[str] | None = None, status: str | None = None, source_glob: str | None = None,
          all: bool = False, engine: str = "rapidocr", workers: int = 2, dpi: int = 300) -> dict[str, Any]:
    """Process chosen documents of OUT again (by id, by status, by source glob, or all; criteria combine),
    from the paths they were seen under. Reviewers' stored decisions are applied again to the new results
    in the exports; a document whose file is gone keeps its stored result."""
    logger = get_run_logger()
    settings = Settings.from_env(engine=engine, workers=workers, dpi=dpi)
    out_path = Path(out)
    if not (out_path / STORE_NAME).exists():
        raise InputError("no state store here: run or ingest into this folder first", source=out)
    with locked(out_path):
        store = StateStore.for_output(out_path)
        selection = select_documents(store, doc_ids, status, source_glob, everything=all)
        run_id = _run_id()
        store.start_run(run_id, "rerun")
        plan = locate(selection, store, work_dir(out_path), settings.limits)
        for message in plan.missing:
            logger.warning("cannot rerun %s", message)
        summary = run_documents(plan.files, plan.problems, out_path, settings, store, force=True,
                                known_ids=plan.known_ids)
        summary.documents += len(plan.missing)
        summary.failures.extend(f"cannot rerun {message}" for message in plan.missing)
        summary = finish(out_path, store, summary, "rerun")
        store.finish_run(run_id, summary.to_dict())
    return summary.to_dict()


def configured(flow_: Any, workers: int, dask_address: str | None = None) -> Any:
    """A flow with its document tasks on ``workers`` threads, or on the Dask cluster at ``dask_address``."""
    return with_workers(workers, dask_address, flow_=flow_)


# -- deployments (``formrescue serve``)


def review_flow() -> Any | None:
    """The ``apply-review`` flow if this build has it (flows/review.py), else None."""
    if importlib.util.find_spec("flows.review") is None:
        return None
    module = importlib.import_module("flows.review")
    return getattr(module, "apply_review", None)


def deployments(archive: str, out: str, cron: str, timezone: str | None = None, engine: str = "rapidocr",
                workers: int = 2, dpi: int = 300, dask_address: str | None = None) -> tuple[list[Any], list[str]]:
    """The served deployments (ingest-archive/nightly on the schedule; rerun/manual and apply-review/manual on
    demand) and notes on what was left out."""
    from prefect.schedules import Cron

    common = {"out": out, "engine": engine, "workers": workers, "dpi": dpi}
    notes: list[str] = []
    nightly = configured(ingest_archive, workers, dask_address).to_deployment(
        name="nightly", schedules=[Cron(cron, timezone=timezone)], parameters={"archive": archive, **common},
        description=f"Ingest new and changed files of {archive} into {out}", tags=["formrescue"])
    manual = configured(rerun, workers, dask_address).to_deployment(
        name="manual", parameters=common, tags=["formrescue"],
        description=f"Rerun documents of {out}: --param doc_ids='[\"ID\"]' | status=failed | source_glob='*x*' "
                    "| all=true")
    served = [nightly, manual]
    review = review_flow()
    if review is None:
        notes.append("apply-review/manual not served: this build has no flows/review.py with an apply_review flow")
    else:
        accepted = inspect.signature(review.fn).parameters
        parameters = {key: value for key, value in common.items() if key in accepted}
        served.append(review.to_deployment(name="manual", parameters=parameters, tags=["formrescue"],
                                           description=f"Apply a reviewed queue back into {out}"))
    return served, notes
