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
  reader:NAME     formrescue's scan reader (pipeline.scan.read_pages: page preparation, ruling lines, cells)
                  with the registered engine NAME, per page split into time inside the engine ("OCR") and
                  everything else ("reader other"):
                    reader:paddleocr           PaddleOCR's TextRecognition on the text lines found in the cells
                    reader:paddleocr-fullpage  PaddleOCR's full-page det+rec, words assigned to the cells
                    reader:rapidocr            RapidOcrEngine on the text lines found in the cells (as shipped)

Usage (needs the paddleocr extra: bash scripts/install_paddleocr_extra.sh):
  python bench/paddle_bench.py                                   # both shared scans, all pages
  python bench/paddle_bench.py --pages 1-2 --contenders paddleocr,rapidocr --threads 2 --json out.json
  python bench/paddle_bench.py --contenders reader:paddleocr,reader:paddleocr-fullpage,reader:rapidocr
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
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.timing import Timed  # noqa: E402

DEFAULT_PDFS = [
    REPO.parent / "shared" / "scans" / "clean-20-000.pdf",
    REPO.parent / "shared" / "scans" / "noisy-20-000.pdf",
]
CONTENDERS = ("paddleocr", "paddleocr-2000", "rapidocr")


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
    # The full-page engine: PaddleOCR's own defaults (the line engine defaults its threads like RapidOcrEngine).
    engine = get_engine("paddleocr-fullpage", **options)

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


def instrument_engine(engine: Any, totals: dict[str, float]) -> None:
    """Time the stages inside a formrescue PaddleOCR engine: its predictors and their ONNX Runtime runners."""
    from pipeline.ocr.paddle import PaddleOcrEngine, PaddleOcrFullPageEngine

    if isinstance(engine, PaddleOcrEngine):
        predictors = [("rec", engine.text_recognition.paddlex_predictor)]
    elif isinstance(engine, PaddleOcrFullPageEngine):
        inner = engine.paddleocr.paddlex_pipeline._pipeline
        predictors = [("det", inner.text_det_model), ("rec", inner.text_rec_model)]
    else:
        return
    for stage, predictor in predictors:
        predictor.process = Timed(predictor.process, totals, stage)
        predictor.runner = Timed(predictor.runner, totals, "onnx")


def reader_worker(args: argparse.Namespace, engine_name: str) -> dict[str, Any]:
    """Pages through formrescue's scan reader with a registered engine: per page OCR vs everything else."""
    from pipeline.config import Limits
    from pipeline.ingest import iter_pdf_pages
    from pipeline.ocr import get_engine
    from pipeline.scan import read_pages

    t0 = time.perf_counter()
    options: dict[str, Any] = {} if args.threads is None else {"threads": args.threads}
    engine: Any = get_engine(engine_name, **options)
    constructed = time.perf_counter() - t0
    t1 = time.perf_counter()
    line = np.full((64, 400, 3), 255, dtype=np.uint8)
    line[20:44, 40:360] = 0
    if hasattr(engine, "recognize_lines"):
        engine.recognize_lines([line])
    else:
        engine.recognize(np.pad(line, ((200, 200), (200, 200), (0, 0)), constant_values=255))
    startup = constructed + time.perf_counter() - t1
    totals: dict[str, float] = {}
    instrument_engine(engine, totals)
    counts_onnx = hasattr(engine, "inference_seconds")  # RapidOcrEngine counts its own ONNX Runtime time

    rows = []
    for pdf in map(Path, args.pdf):
        wanted = set(parse_pages(args.pages, 10**6))
        pages = (p for i, p in enumerate(iter_pdf_pages(pdf, str(pdf), args.dpi, Limits())) if i in wanted)
        per_page: list[dict[str, float]] = []

        def counted(pages: Iterable[Any], per_page: list[dict[str, float]] = per_page) -> Iterable[Any]:
            # read_pages reads each page between two next() calls, so the stage totals are that page's own.
            for page in pages:
                totals.clear()
                onnx0 = float(getattr(engine, "inference_seconds", 0.0))
                yield page
                per_page.append(dict(totals, own_onnx=float(getattr(engine, "inference_seconds", 0.0)) - onnx0))

        result = read_pages(counted(pages), engine)
        confidences: dict[int, list[float]] = {}
        for cell in result.table.cells:
            if cell.text:
                confidences.setdefault(cell.page, []).append(cell.confidence)
        for info, stages in zip(result.pages, per_page, strict=True):
            confs = confidences.get(info.number, [])
            rows.append(
                {
                    "page": f"{pdf.stem}#{info.number}",
                    "seconds": info.ocr_seconds + info.other_seconds,
                    "cpu_seconds": info.ocr_cpu_seconds + info.other_cpu_seconds,
                    "ocr": info.ocr_seconds,
                    "other": info.other_seconds,
                    "det": stages.get("det"),
                    "rec": stages.get("rec", info.ocr_seconds if counts_onnx else None),
                    "onnx": stages["own_onnx"] if counts_onnx else stages.get("onnx"),
                    "lines": info.n_words,
                    "mean_conf": float(np.mean(confs)) if confs else 0.0,
                }
            )
    return {
        "contender": args.worker,
        "startup_s": startup,
        "construct_s": constructed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pages": rows,
    }


def worker(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    totals: dict[str, float] = {}
    name = args.worker
    if name.startswith("reader:"):
        return reader_worker(args, name.removeprefix("reader:"))
    if name.startswith("paddleocr"):
        recognize, instrument = build_paddle(name, args.threads, totals)
    elif name == "rapidocr":
        recognize, instrument = build_rapid(args.threads, totals)
    elif name.startswith("engine:"):
        recognize, instrument = build_registered(name.removeprefix("engine:"))
    else:
        raise SystemExit(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}, engine:NAME, reader:NAME")
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

    # The baseline: RapidOCR run the same way (whole pages, or through the scan reader).
    base = next((r for r in results if r["contender"] == "rapidocr"), None) or next(
        (r for r in results if r["contender"] == "reader:rapidocr"), None
    )
    base_wall, base_cpu = medians(base) if base else (None, None)
    head = (
        "| contender | page runs | wall s/page | wall min–max | CPU s/page | OCR s/page | reader other s/page "
        "| det s/page | rec s/page | ONNX inference | other | start-up s | peak RSS MB | lines/page | mean conf "
        "| × rapidocr wall | × rapidocr CPU |"
    )
    out = [head, "|" + "---|" * 17]
    for r in results:
        pages = r["pages"]
        secs = [p["seconds"] for p in pages]
        wall, cpu = medians(r)
        timed = [p for p in pages if p["onnx"] is not None]
        onnx_share = sum(p["onnx"] for p in timed) / sum(p["seconds"] for p in timed) if timed else None
        out.append(
            f"| {r['contender']} | {len(pages)} | {wall:.2f} | {min(secs):.2f}–{max(secs):.2f} | {cpu:.2f} | "
            f"{_fmt(_median(p.get('ocr', p['seconds']) for p in pages))} | "
            f"{_fmt(_median(p.get('other') for p in pages))} | "
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
        f"# OCR per page, {args.dpi} dpi, pages {args.pages} of {', '.join(p.name for p in args.pdf)}; "
        f"{args.rounds} round(s); threads={args.threads or 'ORT default'}; {os.cpu_count()} CPUs; "
        f"load average (1/5 min) at the end {load[0]:.1f}/{load[1]:.1f}"
    )
    print(summarize(results))
    print(
        "\nwall/CPU s/page: median over pages of the fastest round per page (CPU = all threads of the process). "
        "OCR: median time inside the engine; reader other (reader:* contenders): the rest of the scan reader "
        "(page preparation, ruling lines, cells, line finding, crops; rendering excluded). "
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
