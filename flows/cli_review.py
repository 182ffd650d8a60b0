"""``formrescue review apply QUEUE --out OUT`` and ``formrescue review status OUT``.

Nothing heavy is imported at module level: every ``formrescue`` command builds this parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.cli import EXIT_OK, EXIT_USAGE, check_output


def register(subparsers: Any) -> None:
    review = subparsers.add_parser(
        "review", help="apply a reviewed queue back (review apply), or see what is open (review status)",
        description="Work the review queue: open OUT/review_queue.xlsx in Excel or WPS, fill in decision "
        "(accept | correct | reject), corrected_value, reviewer, note, save, then apply it.")
    commands = review.add_subparsers(dest="review_command", metavar="SUBCOMMAND")

    apply = commands.add_parser(
        "apply", help="store the decisions of a reviewed queue (.xlsx or .csv) and regenerate OUT's outputs",
        description="Check every row of QUEUE against OUT's state store and store its decisions (all or none): "
        "unknown review ids, a changed value column, a correct without corrected_value or a malformed row "
        "refuse the whole file with one message per row. Decisions survive reruns; catalogue confirmations "
        "and corrections are learned as aliases.")
    apply.add_argument("queue", type=Path, metavar="QUEUE", help="review_queue.xlsx or review_queue.csv, reviewed")
    apply.add_argument("--out", required=True, type=Path, help="output folder the queue came from")
    apply.add_argument("--reviewer", default=None,
                       help="name recorded for rows whose reviewer column is empty (default: your user name)")
    apply.set_defaults(func=run_apply)

    status = commands.add_parser("status", help="open review items by reason and by document, and what is decided")
    status.add_argument("out", type=Path, metavar="OUT", help="output folder")
    status.set_defaults(func=run_status)

    def no_subcommand(_: argparse.Namespace) -> int:
        review.print_help(sys.stderr)
        return EXIT_USAGE

    review.set_defaults(func=no_subcommand)


def _store(out: Path) -> Any:
    from pipeline.errors import InputError
    from pipeline.store import STORE_NAME, StateStore

    check_output(out)
    if not (out / STORE_NAME).exists():
        raise InputError("no state store here: run or ingest into this folder first", source=str(out))
    return StateStore.for_output(out)


def run_apply(args: argparse.Namespace) -> int:
    from pipeline.review_io import check_queue

    # Refuse a bad file at once, before Prefect's server starts (the flow checks again under the lock).
    check_queue(args.queue, _store(args.out), applied_by=args.reviewer)

    from flows import prefect_env

    prefect_env.configure()
    prefect_env.start_server_in_background()
    prefect_env.wait_for_server()
    from flows.review import apply_review

    summary = apply_review(queue=str(args.queue), out=str(args.out), reviewer=args.reviewer)
    decided = ", ".join(f"{n} {d}" for d, n in sorted(summary["by_decision"].items())) or "none new"
    print(f"{args.queue}: {summary['stored']} decisions stored ({decided}), {summary['unchanged']} already stored, "
          f"{summary['still_open']} rows left open, {summary['aliases']} catalogue aliases learned")
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary["by_status"].items()))
    print(f"outputs in {args.out} regenerated: {summary['forms']} forms, documents {statuses}, "
          f"{summary['review_items']} review items open")
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    from pipeline.review_io import format_status, queue_status

    print(format_status(queue_status(_store(args.out))))
    return EXIT_OK
