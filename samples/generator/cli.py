"""Command line of the synthetic scan generator.

    python -m samples.generator --n 30 --preset noisy --seed 1 --out bench/data/noisy
    python -m samples.generator --from-json ../shared/seed/000_9ccbaafc82c3a09f.expected.json --preset harsh \
        --out bench/data/seed-harsh
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .forms import load_forms
from .generate import Options, generate
from .scan import PRESETS


def _pairs(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE options; values are JSON when they parse (true, 40, [1,2]) and strings otherwise."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samples.generator",
                                 description="Synthetic scans of 财政项目支出绩效自评表 with exact truth.")
    ap.add_argument("--n", type=int, default=1, help="documents to generate (default 1)")
    ap.add_argument("--preset", choices=PRESETS, default="noisy", help="scan noise level")
    ap.add_argument("--seed", type=int, default=1, help="run seed: same seed, same documents")
    ap.add_argument("--out", type=Path, required=True, help="output folder (e.g. bench/data/noisy)")
    ap.add_argument("--from-json", type=Path, nargs="+", metavar="FILE",
                    help="render these truth forms ({'forms': [...]} or one form) instead of random ones; "
                         "every document holds all forms of all files, in order")
    ap.add_argument("--dpi", type=int, help="force the scan resolution (default: drawn per document, 200-300)")
    ap.add_argument("--png", action="store_true", help="also write each page as PNG")
    ap.add_argument("--tiff", action="store_true", help="also write a multi-page TIFF per document")
    ap.add_argument("--no-textlayer", action="store_true", help="do not keep the office PDF with its text layer")
    ap.add_argument("--keep-docx", action="store_true", help="keep the DOCX sources")
    ap.add_argument("--workers", type=int, default=2, help="processes for scanning pages (default 2)")
    ap.add_argument("--split-p", type=float, default=0.75,
                    help="chance that a form LibreOffice laid out without a split row is re-flowed to get one")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="fix a layout key for every document, e.g. --set landscape=true "
                         "--set font='Noto Serif CJK SC'")
    ap.add_argument("--renderer", choices=["docx", "pil", "mixed"], default="docx",
                    help="docx: LibreOffice lays out a DOCX (default); pil: tables drawn directly, no office suite; "
                         "mixed: pil for --pil-share of the documents")
    ap.add_argument("--pil-share", type=float, default=0.25, help="share of PIL-drawn documents with --renderer mixed")
    ap.add_argument("--scan", action="append", default=[], metavar="KEY=VALUE",
                    help="fix a scan key for every document, e.g. --scan jpeg=40 --scan binarize=true")
    args = ap.parse_args(argv)

    forms = sources = None
    if args.from_json:
        forms, sources = [], []
        for f in args.from_json:
            got = load_forms(f)
            forms += got
            sources += [f.name] * len(got)
    layout, scan = _pairs(args.set), _pairs(args.scan)
    opts = Options(preset=args.preset, seed=args.seed, png=args.png, tiff=args.tiff,
                   textlayer=not args.no_textlayer, keep_docx=args.keep_docx, dpi=args.dpi, workers=args.workers,
                   split_p=args.split_p, layout=layout, scan=scan,
                   renderer=args.renderer, pil_share=args.pil_share)
    t = time.perf_counter()
    manifests = generate(args.n, args.out, opts, forms, sources, log=lambda m: print(m, file=sys.stderr))
    pages = sum(m["docs"][0]["pages"] for m in manifests)
    print(f"{len(manifests)} documents, {pages} pages -> {args.out} in {time.perf_counter() - t:.1f}s")
    return 0
