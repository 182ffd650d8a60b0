"""Pages read in turn against pages prepared ahead on a background thread, at equal and at lower priority.

    python bench/experiments/lookahead_ab.py PDF...

Every document is read by ``read_pages`` (RapidOCR engine, 300 dpi) once per configuration, the order of
the configurations rotating from one document to the next so that the machine's drifting speed falls on
all of them alike. Printed per configuration: wall seconds a page (and its ratio to reading in turn), the
wall time inside ONNX Runtime a page, the share of the wall time outside it (the issue 7 figure), CPU
seconds a page, and the share of CPU in the OCR engine as the reader reports it (``PageInfo``). Every
configuration must read the same table from each document: the script stops if one does not.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# (label, lookahead, niceness added to the preparing thread)
CONFIGS = (("in turn", False, 0), ("ahead, same priority", True, 0), ("ahead, nicer +10", True, 10),
           ("ahead, nicer +19", True, 19))


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdfs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    import numpy as np

    import pipeline.scan as scan
    from pipeline.config import Limits
    from pipeline.ingest import iter_pdf_pages
    from pipeline.ocr.rapid import RapidOcrEngine

    engine = RapidOcrEngine()
    engine.recognize_lines([np.full((32, 200, 3), 255, np.uint8)])  # sessions built before the first timing
    totals = {label: [0.0, 0.0, 0.0, 0.0, 0] for label, _, _ in CONFIGS}  # wall, ORT, CPU, OCR CPU, pages
    tables: dict[Path, str] = {}
    for k, pdf in enumerate(args.pdfs):
        shift = k % len(CONFIGS)
        for label, lookahead, nicer in CONFIGS[shift:] + CONFIGS[:shift]:
            scan.PREPARATION_NICER = nicer
            ort0, cpu0, wall0 = engine.inference_seconds, _cpu(), time.perf_counter()
            result = scan.read_pages(iter_pdf_pages(pdf, str(pdf), 300, Limits()), engine, lookahead=lookahead)
            row = totals[label]
            row[0] += time.perf_counter() - wall0
            row[1] += engine.inference_seconds - ort0
            row[2] += _cpu() - cpu0
            row[3] += sum(p.ocr_cpu_seconds for p in result.pages)
            row[4] += len(result.pages)
            table = scan.format_table(result.table)
            if tables.setdefault(pdf, table) != table:
                print(f"{pdf}: '{label}' read another table than '{CONFIGS[shift][0]}'", file=sys.stderr)
                return 1
        print(f"{pdf}: the same table in every configuration", flush=True)
    base = totals[CONFIGS[0][0]][0]
    print(f"\n{'configuration':<24}{'s/page':>8}{'ratio':>7}{'ORT s/page':>12}{'outside ORT':>13}{'CPU s/page':>12}"
          f"{'OCR CPU':>9}")
    for label, (wall, ort, cpu, ocr_cpu, pages) in totals.items():
        n = max(1, int(pages))
        print(f"{label:<24}{wall / n:>8.3f}{wall / base:>7.3f}{ort / n:>12.3f}{1 - ort / wall:>13.1%}"
              f"{cpu / n:>12.3f}{ocr_cpu / cpu:>9.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
