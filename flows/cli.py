"""The ``formrescue`` command.

Exit codes: 0 every document processed (clean or needing review); 1 some document failed (the others
were processed and exported); 2 bad usage or nothing to do; 3 the output folder is in use by another
run; 4 an internal error (run again with ``--debug`` for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED_DOCS, EXIT_USAGE, EXIT_BUSY, EXIT_INTERNAL = 0, 1, 2, 3, 4

# Modules that add subcommands: each has ``register(subparsers)`` setting ``func`` on its parsers.
COMMAND_MODULES = ("flows.cli_run", "flows.cli_archive", "flows.cli_review", "flows.cli_bench")

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="formrescue",
        description="Scanned 财政项目支出绩效自评表 to clean, reviewable records (forms.jsonl, CSVs, review queue).",
        epilog="Exit codes: 0 ok, 1 some documents failed, 2 usage, 3 output folder busy, 4 internal error.",
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks of internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # command group not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from pipeline.errors import FormRescueError
    from pipeline.ocr.base import EngineUnavailable
    from pipeline.workspace import WorkspaceBusy

    try:
        return handler(args)
    except WorkspaceBusy as exc:
        print(f"formrescue: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except EngineUnavailable as exc:
        print(f"formrescue: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FormRescueError as exc:
        print(f"formrescue: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("formrescue: interrupted; finished documents are kept, rerun to continue", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: a clear message, the traceback on request
        if args.debug or os.environ.get("FORMRESCUE_DEBUG"):
            traceback.print_exc()
        print(f"formrescue: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default=os.environ.get("FORMRESCUE_ENGINE", "rapidocr"),
                        help="OCR engine: rapidocr (default) or paddleocr (needs formrescue[paddleocr])")
    parser.add_argument("--workers", type=positive_int, default=2, help="documents processed at once (threads)")
    parser.add_argument("--dpi", type=positive_int, default=300, help="rendering resolution of PDF pages")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def progress_bar(enabled: bool) -> Any:
    """A rich progress bar fed by the flows' progress hook (or a no-op)."""
    from flows.progress import ProgressDisplay

    return ProgressDisplay(enabled and sys.stderr.isatty())


def check_output(out: Path) -> None:
    if out.exists() and not out.is_dir():
        from pipeline.errors import InputError

        raise InputError("--out must be a folder, but it is a file", source=str(out))
