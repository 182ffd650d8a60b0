"""``formrescue ingest`` / ``rerun`` / ``serve``: archive ingestion (what cron calls), manual reruns, and the
deployments served to a Prefect server (nightly ingest on a schedule, rerun and apply-review on demand).

Nothing heavy is imported at module level: every ``formrescue`` command builds this parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from flows.cli import (
    EXIT_FAILED_DOCS,
    EXIT_OK,
    EXIT_USAGE,
    add_common_options,
    check_output,
    positive_int,
    progress_bar,
)

STATUSES = ("failed", "needs_review", "clean")


def add_dask_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dask-address", metavar="tcp://HOST:PORT", default=os.environ.get("FORMRESCUE_DASK_ADDRESS"),
                        help="run the document tasks on this existing Dask cluster (workers need formrescue installed "
                        "and the Prefect server reachable; see docs/operations.md)")


def register(subparsers: Any) -> None:
    ingest = subparsers.add_parser(
        "ingest", help="process the new and changed files of an archive folder or zip (what cron calls)",
        description="Walk ARCHIVE (a folder or .zip) and process into OUT only the files not done yet: a file is "
        "known by its content hash, so a renamed or moved file is not processed again. Unchanged files are "
        "recognised by their size, times and inode without being read (--rehash reads every file).")
    ingest.add_argument("archive", metavar="ARCHIVE", help="folder or .zip of forms")
    ingest.add_argument("--out", required=True, type=Path, help="output folder (also holds the state store)")
    ingest.add_argument("--rehash", action="store_true", help="hash every file instead of trusting unchanged "
                        "file signatures")
    add_common_options(ingest)
    add_dask_option(ingest)
    ingest.set_defaults(func=run_ingest)

    again = subparsers.add_parser(
        "rerun", help="process chosen documents of OUT again, keeping reviewers' corrections",
        description="Process documents of OUT again from the paths they were seen under, chosen by id, status, "
        "source glob, or all (given criteria combine). Stored review decisions are applied to the new results. "
        "A document whose file is gone keeps its stored result.")
    again.add_argument("--out", required=True, type=Path, help="output folder holding the state store")
    again.add_argument("--id", dest="doc_ids", action="append", metavar="ID",
                       help="document id (doc_id in forms.jsonl, or a unique prefix of 8+ characters); repeatable")
    again.add_argument("--status", choices=STATUSES, help="documents with this status")
    again.add_argument("--source", dest="source_glob", metavar="GLOB",
                       help="documents seen under a path matching GLOB (fnmatch; * also crosses /), e.g. '*2023*'")
    again.add_argument("--all", action="store_true", help="every current document")
    add_common_options(again)
    add_dask_option(again)
    again.set_defaults(func=run_rerun)

    serve = subparsers.add_parser(
        "serve", help="serve the nightly ingest and the manual rerun / apply-review deployments to a Prefect server",
        description="Register and serve deployments on the Prefect server at PREFECT_API_URL: ingest-archive/nightly "
        "on the --cron schedule, rerun/manual and apply-review/manual on demand (prefect deployment run "
        "'rerun/manual' --param status=failed). Runs until stopped (Ctrl-C); flow runs execute here.",
        epilog="Needs a running server (prefect server start) and PREFECT_API_URL pointing at it: a temporary "
        "embedded server would take the schedules with it when this process ends.")
    serve.add_argument("--archive", required=True, type=Path, help="folder or .zip the nightly run ingests")
    serve.add_argument("--out", required=True, type=Path, help="output folder")
    serve.add_argument("--cron", default="0 2 * * *", help="schedule of the nightly ingest (default: 0 2 * * *)")
    serve.add_argument("--timezone", default=None, help="IANA time zone of the schedule, e.g. Asia/Shanghai "
                       "(default: UTC)")
    serve.add_argument("--limit", type=positive_int, default=1,
                       help="flow runs at once (default 1: runs on one output folder queue up instead of colliding)")
    add_common_options(serve)
    add_dask_option(serve)
    serve.set_defaults(func=run_serve)


def _start_prefect(engine: str, dask_address: str | None) -> None:
    """Embedded mode: start the temporary server in the background (and, when documents run in this process, load
    the catalogue meanwhile). Worker processes and the OCR engine start on the first document: an unchanged
    archive needs neither."""
    from flows import prefect_env
    from pipeline.errors import FormRescueError

    prefect_env.configure()
    if dask_address and prefect_env.embedded():
        raise FormRescueError("--dask-address needs a Prefect server: start one (prefect server start) and set "
                              "PREFECT_API_URL here and in the environment of every Dask worker")
    prefect_env.start_server_in_background()
    if prefect_env.embedded():
        from pipeline.config import Settings

        settings = Settings.from_env(engine=engine)
        if settings.isolation == "thread":
            from pipeline.process import shared_catalogue

            shared_catalogue(settings.catalogue)
    prefect_env.wait_for_server()


def _exit_code(summary: dict[str, Any]) -> int:
    return EXIT_FAILED_DOCS if summary["failures"] else EXIT_OK


def _with_progress(args: argparse.Namespace, call: Any) -> dict[str, Any]:
    from flows.process import add_progress_hook, remove_progress_hook

    with progress_bar(not args.no_progress) as hook:
        add_progress_hook(hook)
        try:
            result: dict[str, Any] = call()
        finally:
            remove_progress_hook(hook)
    return result


def run_ingest(args: argparse.Namespace) -> int:
    from pipeline.errors import InputError

    check_output(args.out)
    if not Path(args.archive).exists():
        raise InputError("archive not found (is the share mounted?)", source=args.archive)
    _start_prefect(args.engine, args.dask_address)
    from flows.archive import configured, ingest_archive
    from flows.process import print_summary

    flow_ = configured(ingest_archive, args.workers, args.dask_address)
    summary = _with_progress(args, lambda: flow_(archive=str(args.archive), out=str(args.out), engine=args.engine,
                                                 workers=args.workers, dpi=args.dpi, rehash=args.rehash))
    print_summary(summary, args.out)
    return _exit_code(summary)


def run_rerun(args: argparse.Namespace) -> int:
    from pipeline.errors import InputError
    from pipeline.store import STORE_NAME

    check_output(args.out)
    if not (args.doc_ids or args.status or args.source_glob or args.all):
        print("formrescue rerun: say which documents: --id ID, --status STATUS, --source GLOB or --all",
              file=sys.stderr)
        return EXIT_USAGE
    if not (args.out / STORE_NAME).exists():
        raise InputError("no state store here: run or ingest into this folder first", source=str(args.out))
    _start_prefect(args.engine, args.dask_address)
    from flows.archive import configured, rerun
    from flows.process import print_summary

    flow_ = configured(rerun, args.workers, args.dask_address)
    summary = _with_progress(args, lambda: flow_(out=str(args.out), doc_ids=args.doc_ids, status=args.status,
                                                 source_glob=args.source_glob, all=args.all, engine=args.engine,
                                                 workers=args.workers, dpi=args.dpi))
    if summary["documents"] == 0:
        print("formrescue rerun: no document matches", file=sys.stderr)
        return EXIT_USAGE
    print_summary(summary, args.out)
    return _exit_code(summary)


def run_serve(args: argparse.Namespace) -> int:
    from pipeline.errors import InputError

    check_output(args.out)
    if not os.environ.get("PREFECT_API_URL"):
        print("formrescue serve: needs a Prefect server. Start one (prefect server start) and set PREFECT_API_URL, "
              "e.g. PREFECT_API_URL=http://127.0.0.1:4200/api formrescue serve ...; an embedded server would end "
              "with this process and lose the schedules.", file=sys.stderr)
        return EXIT_USAGE
    if not args.archive.exists():
        raise InputError("archive not found (is the share mounted?)", source=str(args.archive))
    from flows import prefect_env

    prefect_env.configure(quiet=False)
    from prefect.schedules import Cron

    try:
        Cron(args.cron, timezone=args.timezone)
    except ValueError as exc:
        print(f"formrescue serve: bad --cron/--timezone: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = _server_problem()
    if problem:
        print(f"formrescue serve: cannot reach the Prefect server at {os.environ['PREFECT_API_URL']}: {problem}",
              file=sys.stderr)
        return EXIT_USAGE

    from prefect import serve

    from flows.archive import deployments

    # Absolute paths: flow runs must find the archive whatever directory they start in.
    served, notes = deployments(str(args.archive.resolve()), str(args.out.resolve()), args.cron, args.timezone,
                                engine=args.engine, workers=args.workers, dpi=args.dpi,
                                dask_address=args.dask_address)
    for note in notes:
        print(f"formrescue serve: {note}", file=sys.stderr)
    serve(*served, limit=args.limit)
    return EXIT_OK


def _server_problem() -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    return f"{type(error).__name__}: {error}" if error else None
