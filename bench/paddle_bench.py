"""Full-page OCR speed: PaddleOCR 3.7 (formrescue's ``paddleocr`` engine) against RapidOCR, same pages, same run.

Each contender runs in its own fresh Python process (so start-up includes imports and model loading, and
peak memory is its own), on the same pages rendered with pypdfium2. Per page it records the wall time and
the split into text detection, text recognition and pure ONNX Runtime inference; it prints a table.

Contenders:
  paddleocr       PaddleOCR 3.7 OCR pipeline, PP-OCRv6 small det/rec on ONNX Runtime, PaddleOCR's own
                  defaults (detection at full page resolution: limit_type=min, limit_side_len=64).
                  This is the "PaddleOCR 3.7 full-page det+rec" contender of issue 7.
  paddleocr-2000  the same, detection input limited to 2000 px on the long side, as RapidOCR does.
  rapidocr        rapidocr 3.10 full page, same PP-OCRv6 small det/rec files, no angle classifier.
  engine:NAME     any engine of formrescue's registry (e.g. engine:rapidocr) on whole pages, no stage split.

Usage (needs the paddleocr extra: bash scripts/install_paddleocr_extra.sh):
  python bench/paddle_bench.py                                   # both shared scans, all pages
  python bench/paddle_bench.py --pages 1-2 --contenders paddleocr,rapidocr --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PDFS = [
    REPO.parent / "shared" / "scans" / "clean-20-000.pdf",
    REPO.parent / "shared" / "scans" / "noisy-20-000.pdf",
]
CONTENDERS = ("paddleocr", "paddleocr-2000", "rapidocr")


class Timed:
    """Callable proxy that adds the wall time of each call to ``totals[key]`` and delegates the rest."""

    def __init__(self, target: Any, totals: dict[str, float], key: str) -> None:
        self._target = target
        self._totals = totals
        self._key = key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._target(*args, **kwargs)
        finally:
            self._totals[self._key] = self._totals.get(self._key, 0.0) + time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def parse_pages(spec: str, n_pages: int) -> list[int]:
    """'all', '1-3', '1,4' (1-based) -> 0-based indices within the document."""
    if spec == "all":
        return list(range(n_pages))
    pages: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        pages.extend(range(int(first) - 1, int(last or first)))
    return [p for p in pages if 0 <= p < n_pages]


def render(pdf_path: Path, pages_spec: str, dpi: int) -> list[tuple[str, np.ndarray]]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(pdf_path))
    try:
        return [
            (f"{pdf_path.stem}#{i + 1}", np.asarray(pdf[i].render(scale=dpi / 72).to_pil().convert("RGB")))
            for i in parse_pages(pages_spec, len(pdf))
        ]
    finally:
        pdf.close()


# --- contenders (run inside the worker process) --------------------------------------------------------

Recognize = Callable[[np.ndarray], tuple[int, float]]  # image -> (lines, mean confidence)


def build_paddle(name: str, threads: int | None, totals: dict[str, float]) -> tuple[Recognize, Callable[[], None]]:
    from pipeline.ocr import get_engine

    options: dict[str, Any] = {"threads": threads}
    if name == "paddleocr-2000":
        options.update(text_det_limit_type="max", text_det_limit_side_len=2000)
    engine = get_engine("paddleocr", **options)

    def recognize(image: np.ndarray) -> tuple[int, float]:
        words = engine.recognize(image)
        return len(words), float(np.mean([w.confidence for w in words])) if words else 0.0

    def instrument() -> None:
        # PaddleOCR 3.7 internals: the OCR pipeline's det/rec predictors and their ONNX Runtime runners.
        inner = engine.paddleocr.paddlex_pipeline._pipeline  # type: ignore[attr-defined]
        for stage, predictor in (("det", inner.text_det_model), ("rec", inner.text_rec_model)):
            predictor.process = Timed(predictor.process, totals, stage)
            predictor.runner = Timed(predictor.runner, totals, "onnx")

    return recognize, instrument


def build_rapid(threads: int | None, totals: dict[str, float]) -> tuple[Recognize, Callable[[], None]]:
    from rapidocr import RapidOCR

    params: dict[str, Any] = {"Global.use_cls": False, "Global.log_level": "warning"}
    if threads is not None:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    ocr: Any = RapidOCR(params=params)

    def recognize(image: np.ndarray) -> tuple[int, float]:
        out: Any = ocr(np.ascontiguousarray(image[:, :, ::-1]))  # rapidocr, like PaddleX, reads arrays as BGR
        scores = list(out.scores or ())
        # rapidocr times its own stages: elapse_list = [det, cls, rec]
        det, _cls, rec = [*out.elapse_list, None, None, None][:3]
        totals["det"] = totals.get("det", 0.0) + (det or 0.0)
        totals["rec"] = totals.get("rec", 0.0) + (rec or 0.0)
        return len(scores), float(np.mean(scores)) if scores else 0.0

    def instrument() -> None:
        for stage in (ocr.text_det, ocr.text_rec):
            stage.session = Timed(stage.session, totals, "onnx")

    return recognize, instrument


def build_registered(engine_name: str) -> tuple[Recognize, Callable[[], None]]:
    """Any engine of formrescue's registry, on whole pages; no stage split (its internals are its own)."""
    from pipeline.ocr import get_engine

    engine = get_engine(engine_name)

    def recognize(image: np.ndarray) -> tuple[int, float]:
        words = engine.recognize(image)
        return len(words), float(np.mean([w.confidence for w in words])) if words else 0.0

    return recognize, lambda: None


def worker(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    totals: dict[str, float] = {}
    name = args.worker
    if name.startswith("paddleocr"):
        recognize, instrument = build_paddle(name, args.threads, totals)
    elif name == "rapidocr":
        recognize, instrument = build_rapid(args.threads, totals)
    elif name.startswith("engine:"):
        recognize, instrument = build_registered(name.removeprefix("engine:"))
    else:
        raise SystemExit(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")
    constructed = time.perf_counter() - t0

    pages = [p for pdf in args.pdf for p in render(Path(pdf), args.pages, args.dpi)]
    # Start-up ends after one small recognition, which loads lazily built models (rapidocr) and warms ORT.
    t1 = time.perf_counter()
    recognize(np.ascontiguousarray(pages[0][1][200:450, 700:1800]))
    startup = constructed + time.perf_counter() - t1
    instrument()

    rows = []
    for label, image in pages:
        totals.clear()
        start, cpu_start = time.perf_counter(), time.process_time()
        lines, mean_conf = recognize(image)
        rows.append(
            {
                "page": label,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu_start,  # all threads; less sensitive to other load
                "det": totals.get("det"),
                "rec": totals.get("rec"),
                "onnx": totals.get("onnx"),
                "lines": lines,
                "mean_conf": mean_conf,
            }
        )
    return {
        "contender": name,
        "startup_s": startup,
        "construct_s": constructed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pages": rows,
    }


# --- orchestration ------------------------------------------------------------------------------------


def run_contender(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--pages",
        args.pages,
        "--dpi",
        str(args.dpi),
    ]
    cmd += ["--pdf", *map(str, args.pdf)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"contender {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def merge_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One contender over several rounds: all pages pooled, start-up and peak RSS as medians / maxima."""
    return {
        "contender": runs[0]["contender"],
        "startup_s": statistics.median(r["startup_s"] for r in runs),
        "construct_s": statistics.median(r["construct_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "pages": [p for r in runs for p in r["pages"]],
        "rounds": runs,
    }


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _best_per_page(pages: list[dict[str, Any]], key: str) -> list[float]:
    """The fastest of the rounds for each page: the least disturbed by other load on the machine."""
    best: dict[str, float] = {}
    for p in pages:
        best[p["page"]] = min(best.get(p["page"], float("inf")), p[key])
    return list(best.values())


def summarize(results: list[dict[str, Any]]) -> str:
    def medians(r: dict[str, Any]) -> tuple[float, float]:
        return (
            statistics.median(_best_per_page(r["pages"], "seconds")),
            statistics.median(_best_per_page(r["pages"], "cpu_seconds")),
        )

    base = next((r for r in results if r["contender"] == "rapidocr"), None)
    base_wall, base_cpu = medians(base) if base else (None, None)
    head = (
        "| contender | page runs | wall s/page | wall min–max | CPU s/page | det s/page | rec s/page | ONNX inference "
        "| other | start-up s | peak RSS MB | lines/page | mean conf | × rapidocr wall | × rapidocr CPU |"
    )
    out = [head, "|" + "---|" * 15]
    for r in results:
        pages = r["pages"]
        secs = [p["seconds"] for p in pages]
        wall, cpu = medians(r)
        timed = [p for p in pages if p["onnx"] is not None]
        onnx_share = sum(p["onnx"] for p in timed) / sum(p["seconds"] for p in timed) if timed else None
        out.append(
            f"| {r['contender']} | {len(pages)} | {wall:.2f} | {min(secs):.2f}–{max(secs):.2f} | {cpu:.2f} | "
            f"{_fmt(_median(p['det'] for p in pages))} | {_fmt(_median(p['rec'] for p in pages))} | "
            f"{_pct(onnx_share)} | {_pct(None if onnx_share is None else 1.0 - onnx_share)} | "
            f"{r['startup_s']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{statistics.median(p['lines'] for p in pages):.0f} | "
            f"{statistics.mean(p['mean_conf'] for p in pages):.3f} | "
            f"{_fmt(wall / base_wall if base_wall else None)} | {_fmt(cpu / base_cpu if base_cpu else None)} |"
        )
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdf", nargs="+", type=Path, default=DEFAULT_PDFS)
    parser.add_argument("--pages", default="all", help="1-based pages of each PDF: all | 1-3 | 1,4")
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: ORT's)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=1, help="repeat all contenders, alternating their order")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return 0

    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for round_no in range(args.rounds):
        # Alternate the order so drifting machine load does not always favour the same contender.
        for name in names if round_no % 2 == 0 else names[::-1]:
            print(f"round {round_no + 1}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
            runs[name].append(run_contender(name, args))
    results = [merge_rounds(runs[n]) for n in names]
    load = os.getloadavg()
    print(
        f"# full-page OCR, {args.dpi} dpi, pages {args.pages} of {', '.join(p.name for p in args.pdf)}; "
        f"{args.rounds} round(s); threads={args.threads or 'ORT default'}; {os.cpu_count()} CPUs; "
        f"load average (1/5 min) at the end {load[0]:.1f}/{load[1]:.1f}"
    )
    print(summarize(results))
    print(
        "\nwall/CPU s/page: median over pages of the fastest round per page (CPU = all threads of the process). "
        "det/rec: medians, each stage with its pre/post-processing. ONNX inference: share of wall time in "
        "session.run; other = everything else (image conversion, resizing, cropping, DB post-processing, "
        "decoding). start-up: fresh process, imports + model load + one small warm-up recognition (median)."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"pdf": [str(p) for p in args.pdf], "json": str(args.json)}, "results": results},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
