"""Regenerate the OCR word cache of the shared scan pages (tests/data/ocr_cache/*.json).

    python tests/data/make_ocr_cache.py            # all pages of ../shared/scans/{clean,noisy}-20-000.pdf
    python tests/data/make_ocr_cache.py --pages 1,3

Full-page OCR costs seconds per page, so the layout and stitching tests read these words instead (as a
page's ``text_words``, boxes in the pixels of the page rendered at 300 dpi). Run this deliberately, after
a change to the OCR engine or to how the reader finds text lines, and review the diff of the JSON files:
it is the reader's output on real scans. Tests never regenerate it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

SCANS = ROOT.parent / "shared" / "scans"
DOCS = ("clean-20-000", "noisy-20-000")
DPI = 300
OUT = HERE / "ocr_cache"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", default=",".join(DOCS))
    parser.add_argument("--pages", default="", help="comma-separated page numbers (default: all)")
    args = parser.parse_args(argv)

    import numpy as np
    import pypdfium2 as pdfium

    from pipeline.datamodel import PageImage
    from pipeline.ocr import get_engine
    from pipeline.scan import read_page

    wanted = {int(p) for p in args.pages.split(",") if p.strip()}
    engine = get_engine("rapidocr")
    OUT.mkdir(parents=True, exist_ok=True)
    for doc in args.docs.split(","):
        pdf = pdfium.PdfDocument(str(SCANS / f"{doc}.pdf"))
        try:
            for index in range(len(pdf)):
                number = index + 1
                if wanted and number not in wanted:
                    continue
                image = np.asarray(pdf[index].render(scale=DPI / 72).to_pil().convert("RGB"))
                started = time.perf_counter()
                layout, _ = read_page(PageImage(number, image, float(DPI)), engine)
                words = [w for t in layout.tables for c in t.cells for w in c.words] + list(layout.free)
                words.sort(key=lambda w: (round(w.bbox.y0), w.bbox.x0))
                record = {
                    "source": f"{doc}.pdf",
                    "page": number,
                    "dpi": DPI,
                    "size": [int(image.shape[1]), int(image.shape[0])],
                    "engine": f"{engine.name} (PP-OCRv6 small det/rec from the rapidocr wheel), line mode",
                    "rotation": layout.transform.rotation,
                    "deskew": round(layout.transform.angle, 4),
                    "words": [{"text": w.text, "bbox": [round(v, 1) for v in w.bbox.to_list()],
                               "confidence": round(w.confidence, 4)} for w in words],
                }
                path = OUT / f"{doc}-p{number}.json"
                path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
                print(f"{path.relative_to(ROOT)}: {len(words)} words in {time.perf_counter() - started:.1f}s")
        finally:
            pdf.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
