"""``formrescue bench [OPTIONS]``: the benchmark of bench/run.py (contenders, speed, accuracy, REPORT.md).

The benchmark lives in the source checkout (``bench/``, next to ``flows/``), not in the installed package, so
this command finds it from an editable install; its options are bench/run.py's own (that module and what it
imports at load time use the standard library and pipeline.config only, so building the parser stays cheap).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.cli import EXIT_USAGE


def checkout_root() -> Path | None:
    """The source checkout holding bench/run.py (an editable install), else None."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "bench" / "run.py").is_file() else None


def _bench_run() -> Any:
    root = checkout_root()
    if root is None:
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import bench.run

    return bench.run


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark against PaddleOCR and img2table (speed, accuracy, bench/REPORT.md)",
        description="The benchmark of bench/run.py: contenders on the same pages in one run, speed, memory, "
        "text throughput, and bench/REPORT.md with its plot. Results in bench/results/TAG (git-ignored).")
    module = _bench_run()
    if module is not None:
        module.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module = _bench_run()
    if module is None:
        print("formrescue bench: the benchmark needs a source checkout (pip install -e . from the repository); "
              "bench/run.py was not found next to flows/", file=sys.stderr)
        return EXIT_USAGE
    result: int = module.run(args)
    return result
