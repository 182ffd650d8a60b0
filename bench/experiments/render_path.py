"""Page rendering as pipeline/ingest.py does it against a leaner path, CPU per page (prototype of a change).

    python bench/experiments/render_path.py PDF... [--dpi 300]

Shipped: ``page.render(scale) -> to_pil() -> convert("RGB") -> np.asarray`` plus the blank-page test on a PIL
copy. Leaner: ``page.render(scale, rev_byteorder=True) -> to_numpy()`` (RGB without PIL copies) and the blank
test on a strided view of the same array. Same pixels either way (checked).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args(argv)
    import pypdfium2 as pdfium

    from pipeline.ingest import BLANK_CHECK_DPI, _image_is_blank, is_blank

    scale = args.dpi / 72
    best = {"shipped": float("inf"), "lean": float("inf")}
    pages = 0
    for _ in range(3):
        for name in ("shipped", "lean"):
            c0 = time.process_time()
            n = 0
            for path in args.pdfs:
                pdf = pdfium.PdfDocument(str(path))
                for i in range(len(pdf)):
                    page = pdf[i]
                    if name == "shipped":
                        rendered = page.render(scale=scale, grayscale=False).to_pil().convert("RGB")
                        _image_is_blank(rendered, float(args.dpi))
                        image = np.asarray(rendered)
                    else:
                        image = page.render(scale=scale, rev_byteorder=True).to_numpy()[:, :, :3]
                        step = max(1, round(args.dpi / BLANK_CHECK_DPI))
                        is_blank(np.ascontiguousarray(image[::step, ::step]).mean(axis=2).astype(np.uint8))
                    page.close()
                    n += 1
                    del image
                pdf.close()
            best[name] = min(best[name], time.process_time() - c0)
            pages = n
    print(f"{pages} pages at {args.dpi} dpi: shipped {best['shipped'] / pages:.3f} s CPU/page, lean "
          f"{best['lean'] / pages:.3f} s CPU/page ({best['lean'] / best['shipped']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
