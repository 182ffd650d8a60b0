"""Recognition speed on the very line crops the scan reader produces, under engine variants.

    python bench/experiments/rec_variants.py capture PDF... --out bench/results/crops.pkl [--pages 1,2]
    python bench/experiments/rec_variants.py run bench/results/crops.pkl [--variants base,t1,b16,...]

``capture`` runs the reader as shipped and records every batch of line crops it hands the engine (with the
engine's answers). ``run`` feeds the same crops to engine variants, one fresh process per variant (so
models and ORT arenas do not share a warm cache), and reports ONNX time, CPU time and how many lines read
differently from the shipped engine. Variants are named (see :data:`VARIANTS`); each is keyword options of
:class:`BenchRapidEngine`, a subclass of the shipped engine with the prototyped changes behind options.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fastrec import BenchRapidEngine, quantized_model_dir  # noqa: E402

# name -> (engine options, description)
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "base": ({}, "as shipped: 2 threads, one line per call at its own width"),
    "t1": ({"threads": 1}, "1 intra-op thread"),
    "b1": ({"rec_batch": 1}, "no batching"),
    "b4": ({"rec_batch": 4}, "batches of 4"),
    "b16": ({"rec_batch": 16}, "batches of 16"),
    "b32": ({"rec_batch": 32}, "batches of 32"),
    "px": ({"pixel_budget": 48 * 320 * 16}, "batches by padded pixel budget (16 lines of 320 px)"),
    "px8": ({"pixel_budget": 48 * 320 * 8}, "batches by padded pixel budget (8 lines of 320 px)"),
    "px32": ({"pixel_budget": 48 * 320 * 32}, "batches by padded pixel budget (32 lines of 320 px)"),
    "spin": ({"spinning": True}, "ORT threads spin while idle"),
    "seq1": ({"threads": 1, "rec_batch": 16}, "1 thread, batches of 16"),
    "int8": ({"quantized": "dynamic"}, "rec model int8 (dynamic quantisation of MatMul/Gemm)"),
    "int8conv": ({"quantized": "dynamic-conv"}, "rec model int8 (dynamic quantisation incl. Conv)"),
    "int8static": ({"quantized": "static-conv"}, "rec model Conv int8 (static QDQ, calibrated on samples/scans)"),
    "noopt": ({"graph_opt": "basic"}, "graph optimisation: basic only"),
}


def capture(pdfs: Sequence[Path], pages: set[int] | None, out: Path, dpi: int) -> None:
    from bench.scan_bench import iter_pages
    from pipeline.ocr.rapid import RapidOcrEngine
    from pipeline.scan import read_pages

    class Recording(RapidOcrEngine):
        batches: list[tuple[list[np.ndarray], list[tuple[str, float, float]]]]

        def recognize_lines_detailed(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, float]]:
            got = super().recognize_lines_detailed(crops)
            self.batches.append(([np.ascontiguousarray(c) for c in crops], got))
            return got

    engine = Recording()
    engine.batches = []
    for pdf in pdfs:
        read_pages(iter_pages(pdf, dpi, pages, False), engine)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        pickle.dump(engine.batches, fh, protocol=pickle.HIGHEST_PROTOCOL)
    crops = [c for b, _ in engine.batches for c in b]
    widths = [math.ceil(48 * c.shape[1] / max(1, c.shape[0])) for c in crops]
    print(f"{len(crops)} crops in {len(engine.batches)} calls; rec width median {statistics.median(widths):.0f}, "
          f"p90 {np.percentile(widths, 90):.0f}, max {max(widths)} -> {out}")


def worker(crops_path: Path, name: str, repeats: int) -> dict[str, Any]:
    with crops_path.open("rb") as fh:
        batches = pickle.load(fh)
    options = dict(VARIANTS[name][0])
    if options.get("quantized"):
        options["model_dir"] = quantized_model_dir(str(options.pop("quantized")))
    engine = BenchRapidEngine(**options)
    engine.recognize_lines_detailed(batches[0][0][:2])  # warm-up: first run allocates the arena
    best: dict[str, float] | None = None
    texts: list[str] = []
    for _ in range(repeats):
        engine.inference_seconds = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        texts = []
        for crops, _ in batches:
            texts.extend(t for t, _, _ in engine.recognize_lines_detailed(crops))
        run = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "onnx": engine.inference_seconds}
        if best is None or run["cpu"] < best["cpu"]:
            best = run
    reference = [t for _, got in batches for t, _, _ in got]
    differ = sum(a != b for a, b in zip(reference, texts, strict=True))
    chars = sum(len(t) for t in reference)
    import difflib

    char_err = sum(
        max(len(a), len(b)) - sum(m.size for m in difflib.SequenceMatcher(None, a, b).get_matching_blocks())
        for a, b in zip(reference, texts, strict=True) if a != b)
    assert best is not None
    return {"variant": name, **best, "lines": len(reference), "lines_differ": differ, "char_diff": char_err,
            "chars": chars}


def run(crops_path: Path, names: Sequence[str], repeats: int, rounds: int) -> None:
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else list(reversed(names)):
            proc = subprocess.run([sys.executable, __file__, "worker", str(crops_path), name, "--repeats",
                                   str(repeats)], capture_output=True, text=True, check=False)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            results[name].append(json.loads(line[7:]))
    base = min((x["cpu"] for x in results.get("base", [])), default=None)
    print("| variant | what | CPU s | wall s | ONNX s | CPU × base | lines differing | char diffs / chars |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        if not results[name]:
            continue
        cpu = min(x["cpu"] for x in results[name])
        wall = min(x["wall"] for x in results[name])
        onnx = min(x["onnx"] for x in results[name])
        last = results[name][-1]
        ratio = f"{cpu / base:.2f}" if base else "-"
        print(f"| {name} | {VARIANTS[name][1]} | {cpu:.2f} | {wall:.2f} | {onnx:.2f} | {ratio} | "
              f"{last['lines_differ']}/{last['lines']} | {last['char_diff']}/{last['chars']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("pdfs", nargs="+", type=Path)
    cap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "crops.pkl")
    cap.add_argument("--pages", default="")
    cap.add_argument("--dpi", type=int, default=300)
    rn = sub.add_parser("run")
    rn.add_argument("crops", type=Path)
    rn.add_argument("--variants", default="base,t1,b4,b16,px,int8")
    rn.add_argument("--repeats", type=int, default=1)
    rn.add_argument("--rounds", type=int, default=2)
    wk = sub.add_parser("worker")
    wk.add_argument("crops", type=Path)
    wk.add_argument("name")
    wk.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    if args.cmd == "capture":
        pages = {int(p) for p in args.pages.split(",") if p.strip()} or None
        capture(args.pdfs, pages, args.out, args.dpi)
    elif args.cmd == "run":
        run(args.crops, [n.strip() for n in args.variants.split(",") if n.strip()], args.repeats, args.rounds)
    else:
        print("RESULT " + json.dumps(worker(args.crops, args.name, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
