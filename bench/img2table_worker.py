"""The img2table + Tesseract ``chi_sim`` contender: what an analyst would pick today.

Runs in its own environment (``/work/venv-img2table``: ``pip install img2table pypdfium2``, and Debian's
``tesseract-ocr tesseract-ocr-chi-sim``), so it imports nothing from formrescue
(only the standard-library timer of :mod:`bench.timing`). Same protocol as
:mod:`bench.worker`: ``READY {...}``, then JSON requests on stdin, answers as ``RESULT {...}`` lines:

    {"cmd": "doc", "path": ..., "dpi": 300}  -> RESULT {"tables": [[row, ...], ...], "pages": [...], ...}

Each page is rendered with pypdfium2 at the same resolution formrescue uses and given to img2table as an
image; tables are ruled-table detection (``implicit_rows=False, borderless_tables=False``) with Tesseract
filling the cells. A table comes back as its rows of cell texts; a merged cell's text is repeated in every
grid position it covers, as img2table returns it. Turning rows into indicator records is the adapter's job
(:func:`bench.scoring.img2table_rows`), so the rules can be read and tested without this environment.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import Timed  # noqa: E402  (standard library only, like this worker)

# img2table's rotation/skew correction: off by default in img2table; on here because every scan is tilted a
# little and with it off most scanned pages yield no table at all (IMG2TABLE_ROTATE=0 turns it off).
ROTATE = os.environ.get("IMG2TABLE_ROTATE", "1") != "0"


def cpu_seconds(children: bool = True) -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    if children:  # Tesseract runs as a child process of img2table
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += kids.ru_utime + kids.ru_stime
    return total


def main() -> int:
    t_start = time.perf_counter()
    from img2table.document import Image
    from img2table.ocr import TesseractOCR

    threads = int(os.environ.get("IMG2TABLE_TESSERACT_THREADS", "1"))
    ocr = TesseractOCR(n_threads=threads, lang="chi_sim")
    tesseract: dict[str, float] = {}
    # Time spent in Tesseract: TesseractOCR.of runs the tesseract binary on the page (hOCR output).
    ocr.of = Timed(ocr.of, tesseract, "ocr")  # type: ignore[method-assign]
    import pypdfium2 as pdfium

    ready = {"contender": "img2table", "pid": os.getpid(), "in_process_s": time.perf_counter() - t_start,
             "python": sys.executable}
    print("READY " + json.dumps(ready), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("cmd") == "quit":
            break
        if request.get("cmd") != "doc":
            print("RESULT " + json.dumps({"error": f"unknown command {request.get('cmd')!r}"}), flush=True)
            continue
        dpi = int(request.get("dpi", 300))
        t0, c0 = time.perf_counter(), cpu_seconds()
        tables: list[list[list[str]]] = []
        pages: list[dict[str, Any]] = []
        pdf = pdfium.PdfDocument(request["path"])
        try:
            for index in range(len(pdf)):
                p0, pc0 = time.perf_counter(), cpu_seconds()
                page = pdf[index]
                image = page.render(scale=dpi / 72).to_pil().convert("RGB")
                page.close()
                buffer = io.BytesIO()
                image.save(buffer, format="PNG", compress_level=1)
                render = time.perf_counter() - p0
                tesseract["ocr"] = 0.0
                doc = Image(src=buffer.getvalue(), detect_rotation=ROTATE)
                extracted = doc.extract_tables(ocr=ocr, implicit_rows=False, borderless_tables=False,
                                               min_confidence=50)
                for table in extracted:
                    rows = [[(cell.value or "") for cell in row] for row in table.content.values()]
                    tables.append(rows)
                pages.append({"page": index + 1, "wall": time.perf_counter() - p0, "render": render,
                              "ocr": tesseract.get("ocr", 0.0), "cpu": cpu_seconds() - pc0, "tables": len(extracted)})
        finally:
            pdf.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        answer = {"source": request.get("source"), "tables": tables, "pages": pages, "n_pages": len(pages),
                  "wall": time.perf_counter() - t0, "cpu": cpu_seconds() - c0,
                  "onnx": sum(p["ocr"] for p in pages), "peak_rss_mb": usage.ru_maxrss / 1024,
                  "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
        print("RESULT " + json.dumps(answer, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
