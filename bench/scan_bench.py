"""Seconds per page of the scan reader, split into OCR inference and everything else.

    python bench/scan_bench.py                       # shared scans, default engine settings
    python bench/scan_bench.py --threads 1 --rec-batch 1 --mode fullpage
    python bench/scan_bench.py ../shared/scans/noisy-20-000.pdf --pages 1,3

``--mode lines`` (default) is the reader as shipped: text lines found inside the ruled cells are
recognised directly. ``--mode fullpage`` hides ``recognize_lines`` so the reader runs the engine's
full-page detection + recognition and assigns words to cells (what a PaddleOCR-style pipeline does).
Wall time is what a user waits; CPU time (all threads of this process) is steadier when other work
shares the machine. "onnx" is the time inside ONNX Runtime alone, the rest of "ocr" is crop
preparation and CTC decoding. Not a test: it prints a table and exits.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.worker import FullPageOnly  # noqa: E402

SHARED = ROOT.parent / "shared" / "scans"
DEFAULT_FILES = [SHARED / "clean-20-000.pdf", SHARED / "noisy-20-000.pdf"]


def iter_pages(path: Path, dpi: int, pages: set[int] | None, text_layer: bool) -> Iterator[Any]:
    import numpy as np
    import pypdfium2 as pdfium

    from pipeline.datamodel import PageImage
    from pipeline.textlayer import text_layer_words

    pdf = pdfium.PdfDocument(str(path))
    try:
        for index in range(len(pdf)):
            if pages and index + 1 not in pages:
                continue
            page = pdf[index]
            image = np.asarray(page.render(scale=dpi / 72).to_pil().convert("RGB"))
            words = text_layer_words(page, dpi / 72) if text_layer else None
            page.close()
            yield PageImage(index + 1, image, float(dpi), words)
    finally:
        pdf.close()


def _marked(pages: Iterator[Any], engine: Any, marks: list[float]) -> Iterator[Any]:
    """Pass pages through, noting the engine's ONNX time before each page and after the last."""
    for page in pages:
        marks.append(getattr(engine, "inference_seconds", 0.0))
        yield page
    marks.append(getattr(engine, "inference_seconds", 0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--engine", default="rapidocr")
    parser.add_argument("--mode", choices=["lines", "fullpage"], default="lines")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rec-batch", type=int, default=None)
    parser.add_argument("--min-rec-width", type=int, default=None)
    parser.add_argument("--pages", default="", help="comma-separated page numbers (default: all)")
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--text-layer", action="store_true", help="use the PDF text layer where there is one")
    args = parser.parse_args(argv)

    from pipeline.ocr import get_engine
    from pipeline.scan import read_pages

    options = {k: v for k, v in {"threads": args.threads, "rec_batch": args.rec_batch,
                                 "min_rec_width": args.min_rec_width}.items() if v is not None}
    t0 = time.perf_counter()
    engine = get_engine(args.engine, **options)
    startup = time.perf_counter() - t0
    reader_engine: Any = FullPageOnly(engine) if args.mode == "fullpage" else engine
    pages = {int(p) for p in args.pages.split(",") if p.strip()} or None
    print(f"engine={args.engine} mode={args.mode} options={options or 'defaults'} start-up={startup:.2f}s")
    header = (f"{'file':<28}{'page':>5}{'lines':>7}{'ocr s':>8}{'onnx s':>8}{'other s':>9}{'ocr cpu':>9}"
              f"{'other cpu':>10}")
    print(header)
    print("-" * len(header))
    totals: list[tuple[float, float, float, float, float]] = []
    for path in args.files:
        marks: list[float] = []
        result = read_pages(_marked(iter_pages(path, args.dpi, pages, args.text_layer), engine, marks), reader_engine)
        onnx = [b - a for a, b in itertools.pairwise(marks)] or [0.0] * len(result.pages)
        for info, inference in zip(result.pages, onnx, strict=False):
            totals.append((info.ocr_seconds, inference, info.other_seconds, info.ocr_cpu_seconds,
                           info.other_cpu_seconds))
            print(f"{path.name:<28}{info.number:>5}{info.n_words:>7}{info.ocr_seconds:>8.2f}{inference:>8.2f}"
                  f"{info.other_seconds:>9.2f}{info.ocr_cpu_seconds:>9.2f}{info.other_cpu_seconds:>10.2f}")
    if totals:
        cols = list(zip(*totals, strict=True))
        print("-" * len(header))
        for label, values in (("median per page", [statistics.median(c) for c in cols]),
                              ("mean per page", [statistics.fmean(c) for c in cols])):
            print(f"{label:<40}{values[0]:>8.2f}{values[1]:>8.2f}{values[2]:>9.2f}{values[3]:>9.2f}{values[4]:>10.2f}")
        mean = [statistics.fmean(c) for c in cols]
        wall, cpu = mean[0] + mean[2], mean[3] + mean[4]
        print(f"everything but OCR: {mean[2] / wall:.1%} of wall time, {mean[4] / cpu:.1%} of CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
