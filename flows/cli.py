"""The ``formrescue`` command.

Exit codes: 0 every document processed (clean or needing review); 1 some document failed (the others
were processed and exported); 2 bad usage or nothing to do; 3 the output folder is in use by another
run; 4 an internal error (run again with ``--debug`` for the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
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
        with limit_overrides(args):
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


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


# Options that set a safety limit, and the FORMRESCUE_* variable (pipeline.config.LIMIT_ENV) each one sets.
LIMIT_OPTIONS = {"timeout": "seconds_per_document", "max_pages": "max_pages", "max_pixels": "max_pixels_per_page"}


@contextlib.contextmanager
def limit_overrides(args: argparse.Namespace) -> Iterator[None]:
    """Limits given as options, passed on as their environment variables for the command's duration (every
    setting is read from the environment, so flows and worker processes see them alike)."""
    from pipeline.config import LIMIT_ENV

    saved: dict[str, str | None] = {}
    try:
        for option, limit in LIMIT_OPTIONS.items():
            value = getattr(args, option, None)
            if value is not None:
                variable = LIMIT_ENV[limit]
                saved[variable] = os.environ.get(variable)
                os.environ[variable] = str(value)
        yield
    finally:
        for variable, old in saved.items():
            if old is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = old


def engine_name(text: str) -> str:
    from pipeline.ocr.base import ENGINES

    if text not in ENGINES:
        raise argparse.ArgumentTypeError(f"unknown OCR engine {text!r}; choose from {', '.join(ENGINES)}")
    return text


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default=os.environ.get("FORMRESCUE_ENGINE", "rapidocr"), type=engine_name,
                        help="OCR engine: rapidocr (default), paddleocr or paddleocr-fullpage (both need "
                        "formrescue[paddleocr])")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="documents processed at once, each in a worker process (FORMRESCUE_ISOLATION=thread: "
                        "in threads of this process, with no time limit)")
    parser.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                        help="time limit per document (default 900; FORMRESCUE_SECONDS_PER_DOCUMENT)")
    parser.add_argument("--max-pages", type=positive_int, default=None, metavar="N",
                        help="pages per document (default 500; FORMRESCUE_MAX_PAGES)")
    parser.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                        help="pixels per page image (default 80,000,000; FORMRESCUE_MAX_PIXELS)")
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
