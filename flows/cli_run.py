"""``formrescue run INPUT... --out OUT``: process files, folders or zips with the process-documents flow."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli import EXIT_FAILED_DOCS, EXIT_OK, EXIT_USAGE, add_common_options, check_output, progress_bar

SCAN_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".zip"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="process documents into OUT (done documents are skipped)",
                                   description="Process files, folders or zips of forms into OUT: forms.jsonl, "
                                   "projects.csv, indicators.csv, review_queue.csv. Documents already processed "
                                   "with the same settings are skipped (use --force to redo them).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or .zip archives")
    parser.add_argument("--out", required=True, type=Path, help="output folder (also holds the state store)")
    parser.add_argument("--force", action="store_true", help="process again documents already done")
    add_common_options(parser)
    from flows.cli_archive import add_dask_option

    add_dask_option(parser)
    parser.set_defaults(func=run)


def _needs_ocr(inputs: list[str]) -> bool:
    for given in inputs:
        path = Path(given)
        if path.is_dir() or path.suffix.lower() in SCAN_SUFFIXES:
            return True
    return False


def run(args: argparse.Namespace) -> int:
    from flows import prefect_env

    check_output(args.out)
    prefect_env.configure()
    prefect_env.start_server_in_background()
    # Load what the documents need while Prefect's server starts: worker processes (the flow reuses them), or
    # the engine and catalogue in this process when documents run here.
    from pipeline.config import Settings
    from pipeline.process import shared_catalogue, shared_engine
    from pipeline.workers import worker_pool

    settings = Settings.from_env(engine=args.engine, workers=args.workers)
    isolated = settings.isolation == "process" and not getattr(args, "dask_address", None)
    if not isolated:
        if _needs_ocr(args.inputs):
            shared_engine(settings.engine)
        shared_catalogue(settings.catalogue)

    from flows.process import add_progress_hook, print_summary, remove_progress_hook, with_workers

    with worker_pool(settings, warm=isolated), progress_bar(not args.no_progress) as hook:
        prefect_env.wait_for_server()
        add_progress_hook(hook)
        try:
            flow_ = with_workers(args.workers, args.dask_address)
            summary = flow_(inputs=[str(p) for p in args.inputs], out=str(args.out), engine=args.engine,
                            workers=args.workers, force=args.force, dpi=args.dpi)
        finally:
            remove_progress_hook(hook)
    print_summary(summary, args.out)
    if summary["documents"] == 0:
        return EXIT_USAGE
    return EXIT_FAILED_DOCS if summary["failures"] else EXIT_OK
