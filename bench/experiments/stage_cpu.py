"""CPU time of each stage of reading scanned documents, per page: where the time outside OCR goes.

    python bench/experiments/stage_cpu.py PDF...

The documents go through ``process_file`` as the benchmark's worker runs them (RapidOCR engine, crops
written, one warm-up document first so start-up costs are not counted), with a CPU timer around each
reader and pipeline stage. Printed per page: the total, the OCR engine (``_read_lines``: recognition with
its crop resizing and CTC decoding) and every other stage, and the share of CPU outside the OCR engine,
the figure of issue 7's target (bench/REPORT.md, "Making it fast"). Stages nest (``read_table`` holds the
reader's stages), so the rows do not add up to the total. Timers are process CPU (``time.process_time``),
so the machine's load moves them less than wall time; run it on an otherwise idle machine all the same.
Pages are read in turn (``read_pages(lookahead=False)``): process CPU timers cannot tell the reader's
background thread from this one.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

READER_STAGES = ("prepare_page", "detect_rulings", "find_tables", "line_masks", "text_mask", "text_size",
                 "remove_specks", "drop_small_blobs", "cell_text_lines", "free_text_lines", "ocr_crop",
                 "_cells_from_words", "assemble", "_read_lines")
PIPELINE_STAGES = ("read_table", "extract_forms", "write_crops")


def _timed(module: Any, name: str, totals: dict[str, float]) -> None:
    original: Callable[..., Any] = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.process_time() - started

    setattr(module, name, timed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdfs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    import pypdfium2 as pdfium

    import pipeline.ingest as ingest
    import pipeline.process as process
    import pipeline.scan as scan
    from pipeline.config import Settings
    from pipeline.ocr.rapid import RapidOcrEngine

    settings = Settings.from_env(engine="rapidocr", isolation="thread")
    process._Shared.engines["rapidocr"] = RapidOcrEngine()
    catalogue: Any = process.shared_catalogue(settings.catalogue)
    catalogue.match_indicator("年度培训人次")  # jieba's dictionary: start-up, not the first document
    with tempfile.TemporaryDirectory() as out:
        process.process_file(args.pdfs[0], str(args.pdfs[0]), settings, out=Path(out) / "warm-up")
        totals: dict[str, float] = {}
        for name in READER_STAGES:
            _timed(scan, name, totals)
        for name in PIPELINE_STAGES:
            _timed(process, name, totals)
        _timed(ingest, "_image_is_blank", totals)
        # Pages in turn: the stage timers are process CPU, which a page prepared meanwhile on the reader's
        # background thread would add to the stage running on this one.
        scan.read_pages = functools.partial(scan.read_pages, lookahead=False)  # type: ignore[assignment]
        started = time.process_time()
        for i, pdf in enumerate(args.pdfs):
            process.process_file(pdf, str(pdf), settings, out=Path(out) / str(i))
        total = time.process_time() - started
    pages = sum(len(pdfium.PdfDocument(str(pdf))) for pdf in args.pdfs)
    print(f"{len(args.pdfs)} documents, {pages} pages: {total / pages * 1000:.0f} ms CPU a page")
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {name:20s} {seconds / pages * 1000:8.1f} ms a page")
    outside = total - totals.get("_read_lines", 0.0)
    print(f"outside the OCR engine: {outside / pages * 1000:.0f} ms a page, {outside / total:.1%} of the CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
