"""Write a layout fixture (tests/data/layout/<name>.json) from one page of a scan: the rulings the reader
detects on it, and the cells it builds from them as the expected grid.

    python tests/data/make_layout_fixture.py bench/data/noisy/noisy-1-008.pdf 1 --note "why this page"

Run it on a page whose grid you have checked by eye (the reader got it right after a fix), so the
fixture keeps it right: tests/test_layout.py builds the grid from the stored rulings and compares. The
rulings are stored, not the image, so the test runs in milliseconds and needs no scan. With ``--ink``
the page's ink mask (the working frame the rulings are found in, a 1-bit PNG of some 30 KB) is stored
too, and the test also finds the rulings in it: that covers telling rules from text strokes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import pypdfium2 as pdfium

    from pipeline import imaging, layout

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdf", type=Path)
    parser.add_argument("page", type=int)
    parser.add_argument("--note", default="")
    parser.add_argument("--name", default=None, help="fixture name (default: <pdf stem>-p<page>)")
    parser.add_argument("--ink", action="store_true", help="also store the page's ink mask (<name>.ink.png)")
    args = parser.parse_args(argv)

    pdf = pdfium.PdfDocument(str(args.pdf))
    try:
        image = np.asarray(pdf[args.page - 1].render(scale=300 / 72).to_pil().convert("RGB"))
    finally:
        pdf.close()
    page = imaging.prepare_page(image, 300.0)
    params = layout.LayoutParams(dpi=page.work_dpi)
    rulings, _ = layout.detect_rulings(page.ink, params)
    tables = layout.find_tables(rulings, params)
    data = {
        "note": args.note or f"rulings found on {args.pdf.name} page {args.page} ({page.work_dpi:g} dpi working frame)",
        "dpi": page.work_dpi,
        "rulings": rulings.to_dict(),
        "expected": [{"n_rows": t.n_rows, "n_cols": t.n_cols,
                      "cells": sorted([c.row, c.col, c.row_span, c.col_span] for c in t.cells)} for t in tables],
    }
    out = HERE / "layout" / f"{args.name or f'{args.pdf.stem}-p{args.page}'}.json"
    out.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.ink:
        from PIL import Image

        Image.fromarray(page.ink).convert("1").save(out.with_suffix(".ink.png"), optimize=True)
    print(f"{out}: {len(tables)} table(s), {sum(len(t.cells) for t in tables)} cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
