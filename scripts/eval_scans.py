"""Score the pipeline on scans with truth, fast enough to iterate on.

    python scripts/eval_scans.py [--fresh] [--cache DIR] [--out DIR] PDF...

(V=1 lists silent errors, V=all every wrong field.)

Each PDF's Table (the scan reader's output) is cached under --cache (default /tmp/formrescue-tables),
keyed by the file and the scan reader's source code, so re-running after a change to the form profile
costs no OCR, and a change to the reader reads again. Then forms, normalisation and validation run, the
outputs are exported to --out, and ../shared/tools/evaluate.py scores each document against the
``<stem>.truth.json`` beside it. A total line sums fields over all documents.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.config import Limits, repo_root, shared_dir
from pipeline.datamodel import DocumentResult, Status
from pipeline.export import export
from pipeline.forms import extract_forms
from pipeline.ingest import iter_pdf_pages, sha256_file
from pipeline.normalize import normalize_form
from pipeline.process import shared_catalogue, shared_engine
from pipeline.scan import read_pages
from pipeline.validate import validate_form

EVALUATE = shared_dir() / "tools" / "evaluate.py"
READER_FILES = ("scan.py", "layout.py", "imaging.py", "textlayer.py", "ocr/rapid.py", "ingest.py")


def reader_version() -> str:
    digest = hashlib.sha256()
    for name in READER_FILES:
        digest.update((repo_root() / "pipeline" / name).read_bytes())
    return digest.hexdigest()[:12]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/formrescue-tables"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/formrescue-eval-out"))
    parser.add_argument("--fresh", action="store_true", help="ignore cached tables")
    parser.add_argument("--engine", default="rapidocr")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.out, ignore_errors=True)
    names = {p.name for p in args.pdfs}
    # A text-layer twin (x.textlayer.pdf) beside its scan would be a second document with the same truth.
    args.pdfs = [p for p in args.pdfs if not (p.name.endswith(".textlayer.pdf")
                                              and p.name.replace(".textlayer", "") in names)]
    version = reader_version()
    catalogue = shared_catalogue(None)
    results, truths = [], []
    for path in args.pdfs:
        key = args.cache / f"{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}-{version}-{args.engine}.pkl"
        if key.exists() and not args.fresh:
            table = pickle.loads(key.read_bytes())
        else:
            table = read_pages(iter_pdf_pages(path, str(path), 300, Limits()), shared_engine(args.engine)).table
            key.write_bytes(pickle.dumps(table))
        extraction = extract_forms(table, catalogue)  # type: ignore[arg-type]
        forms = tuple(validate_form(normalize_form(f, catalogue)) for f in extraction.forms)  # type: ignore[arg-type]
        status = (Status.NEEDS_REVIEW if any(f.flags for f in forms) else Status.CLEAN) if forms else Status.FAILED
        results.append(DocumentResult(doc_id=sha256_file(path), source=str(path), status=status, forms=forms,
                                      issues=extraction.issues))
        truth = path.with_name(path.name.split(".")[0] + ".truth.json")
        if truth.exists() and truth not in truths:
            truths.append(truth)
    export(args.out, results)
    totals = {"fields": 0.0, "correct": 0.0, "silent": 0.0, "flagged": 0.0}
    for truth in truths:
        done = subprocess.run([sys.executable, str(EVALUATE), str(args.out), str(truth), "--json"],
                              capture_output=True, text=True, check=False)
        end = done.stdout.rindex("]") + 1
        wrong, line = json.loads(done.stdout[:end]), done.stdout[end:].strip()
        print(truth.name.removesuffix(".truth.json"), line)
        figures = dict(re.findall(r"(\w+) ([0-9.]+)", line))
        n = float(figures["fields"])
        totals["fields"] += n
        totals["correct"] += n * float(figures["accuracy"])
        totals["silent"] += n * float(figures["silent_errors"])
        totals["flagged"] += n * float(figures["review_load"])
        verbose = os.environ.get("V", "")
        if verbose:
            shown = [i for i in wrong if "field" in i and (verbose == "all" or not i["flagged"])]
            for item in shown[:15]:
                mark = "flagged" if item["flagged"] else "SILENT"
                print(f"    {item['field']} | {str(item['want'])[:36]} | {str(item['have'])[:36]} | {mark}")
            if len(shown) > 15:
                print(f"    … {len(shown) - 15} more")
    n = totals["fields"] or 1.0
    print(f"TOTAL fields {int(totals['fields'])} accuracy {totals['correct'] / n:.4f} silent_errors "
          f"{totals['silent'] / n:.4f} review_load {totals['flagged'] / n:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
