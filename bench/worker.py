"""A benchmark contender that runs formrescue's library in this process, one document per request.

Started by :mod:`bench.run` (``python -m bench.worker CONTENDER``, cwd = the repo) with the Python of the
contender's environment (the main venv, or /work/venv-paddle for the paddleocr engine). It loads the engine and
the catalogue once, answers ``READY {...}`` and then reads JSON requests on stdin, one per line:

    {"cmd": "doc", "path": ..., "source": ..., "set": ..., "out": ...}  -> RESULT {timings, pages, rss, ...}
    {"cmd": "export", "out": ...}  -> RESULT {"files": ...}   (forms.jsonl etc. of every document kept in out)
    {"cmd": "quit"}

Answers are single lines starting with ``RESULT `` on stdout (libraries may print other lines there).
Documents go through :func:`pipeline.process.process_file` exactly as ``formrescue run`` does, with crops of
flagged fields written into ``out`` (they are part of what a user waits for), isolation "thread" (this
process is the worker). ``read_pages`` is wrapped only to keep the per-page figures of each document.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ".bench-results"  # each document's DocumentResult (pickle), under the contender's output folder
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import Timed  # noqa: E402


@dataclass(frozen=True, slots=True)
class Contender:
    """How a formrescue contender builds its engine. ``mode``: "lines" (cell-line reading, as shipped) or
    "fullpage" (the engine's full-page det+rec, words assigned to cells)."""

    name: str
    engine: str
    mode: str = "lines"
    options: tuple[tuple[str, Any], ...] = ()
    fast: bool = False  # BenchRapidEngine (prototyped speed options) instead of the shipped class
    quantized: str | None = None
    paddle_venv: bool = False  # run in the PaddleOCR venv (its OpenCV is opencv-contrib 4.10, ours 5.0)
    description: str = ""


CONTENDERS: dict[str, Contender] = {c.name: c for c in (
    Contender("formrescue", "rapidocr", description="formrescue as shipped: RapidOCR PP-OCRv6 rec on the text lines "
              "found inside the ruled cells (no full-page detection)"),
    Contender("formrescue-t1", "rapidocr", options=(("threads", 1),),
              description="as shipped, ONNX Runtime with 1 intra-op thread"),
    Contender("formrescue-fast", "rapidocr", options=(("threads", 1), ("pixel_budget", 48 * 320 * 16)), fast=True,
              description="prototyped speed options: 1 thread, batches by padded pixel budget"),
    Contender("formrescue-int8", "rapidocr", options=(("threads", 1), ("pixel_budget", 48 * 320 * 16)), fast=True,
              quantized="dynamic", description="formrescue-fast with the rec model int8 (dynamic quantisation)"),
    Contender("formrescue-paddlevenv", "rapidocr", paddle_venv=True,
              description="formrescue as shipped, run in the PaddleOCR venv: what its other OpenCV changes"),
    Contender("rapidocr-fullpage", "rapidocr", mode="fullpage",
              description="formrescue's table logic on RapidOCR full-page det+rec (same model files)"),
    Contender("formrescue-paddleocr", "paddleocr",
              description="formrescue with the paddleocr engine: PaddleOCR 3.7's TextRecognition module on the "
                          "text lines found inside the cells"),
    Contender("paddleocr-fullpage", "paddleocr-fullpage", mode="fullpage",
              description="PaddleOCR 3.7 full-page det+rec (its OCR-pipeline defaults, PP-OCRv6 small on ONNX "
                          "Runtime) + formrescue's table logic"),
)}


class FullPageOnly:
    """Hides ``recognize_lines`` so the reader runs the engine's full-page detection + recognition."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.name = engine.name

    def recognize(self, image: Any) -> Any:
        return self._engine.recognize(image)


# The reader wraps the process's engine in pipeline.ocr.base.lazy_engine, which decides line reading from the
# registered class; a full-page contender is registered (in this process only) under its own name and class.
FULLPAGE_NAME = "bench-fullpage"


def settings_engine(contender: Contender) -> str:
    from pipeline.ocr import base

    if contender.engine.startswith("paddleocr"):
        if contender.engine in base.ENGINES and (contender.mode == "lines" or contender.engine != "paddleocr"):
            return contender.engine
        # an older tree without the paddleocr-fullpage engine: its paddleocr engine is the full-page one
    elif contender.mode != "fullpage":
        return contender.engine
    base.ENGINES[FULLPAGE_NAME] = ("bench.worker:FullPageOnly", "formrescue")
    return FULLPAGE_NAME


def build_engine(contender: Contender) -> tuple[Any, Callable[[], float]]:
    """The engine object the reader gets, and a function giving seconds spent in ONNX Runtime so far."""
    options = dict(contender.options)
    if contender.engine == "rapidocr":
        if contender.fast or contender.quantized:
            from bench.fastrec import BenchRapidEngine, quantized_model_dir

            if contender.quantized:
                options["model_dir"] = quantized_model_dir(contender.quantized)
            engine: Any = BenchRapidEngine(**options)
        else:
            from pipeline.ocr.rapid import RapidOcrEngine

            engine = RapidOcrEngine(**options)

        def onnx() -> float:
            return float(engine.inference_seconds)
    else:
        from pipeline.ocr import get_engine
        from pipeline.ocr.base import ENGINES

        name = contender.engine if contender.engine in ENGINES else "paddleocr"
        engine = get_engine(name, **options)
        totals: dict[str, float] = {}
        # PaddleOCR 3.7 internals: the det/rec predictors and their ONNX Runtime runners.
        if hasattr(engine, "recognize_lines") and contender.mode == "lines":
            predictors = [engine.text_recognition.paddlex_predictor]
        else:
            inner = engine.paddleocr.paddlex_pipeline._pipeline
            predictors = [inner.text_det_model, inner.text_rec_model]
        for predictor in predictors:
            predictor.runner = Timed(predictor.runner, totals, "onnx")

        def onnx() -> float:
            return totals.get("onnx", 0.0)
    wrap = contender.mode == "fullpage" and hasattr(engine, "recognize_lines")
    return (FullPageOnly(engine) if wrap else engine), onnx


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB (peak is ru_maxrss)."""
    current = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    except OSError:
        current = 0.0
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Runner:
    def __init__(self, contender: Contender) -> None:
        import pipeline.scan as scan
        from pipeline.config import Settings
        from pipeline.process import _Shared, shared_catalogue

        self.contender = contender
        self.engine_name = settings_engine(contender)
        self.settings = Settings.from_env(engine=self.engine_name, isolation="thread")
        t0 = time.perf_counter()
        engine, self.onnx = build_engine(contender)
        _Shared.engines[self.engine_name] = engine  # process_file takes the process's shared engine
        self.engine_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        shared_catalogue(self.settings.catalogue)  # with its jieba tokenizer (~1 s): start-up, not document 1
        self.catalogue_seconds = time.perf_counter() - t1
        self.last_scan: Any = None
        original = scan.read_pages

        def recording(pages: Iterable[Any], eng: Any, params: Any = None) -> Any:
            result = original(pages, eng, params)
            self.last_scan = result
            return result

        scan.read_pages = recording  # type: ignore[assignment]

    def warm_up(self) -> float:
        """One small recognition: lazily built sessions and ORT arenas are part of start-up, not page 1."""
        import numpy as np

        t0 = time.perf_counter()
        image = np.full((64, 400, 3), 255, dtype=np.uint8)
        image[20:44, 40:360] = 0
        from pipeline.process import _Shared

        engine: Any = _Shared.engines[self.engine_name]
        if hasattr(engine, "recognize_lines"):
            engine.recognize_lines([image])
        else:
            engine.recognize(np.pad(image, ((200, 200), (200, 200), (0, 0)), constant_values=255))
        return time.perf_counter() - t0

    def doc(self, path: Path, source: str, set_name: str, out: Path) -> dict[str, Any]:
        from pipeline.process import process_file

        self.last_scan = None
        onnx0, cpu0, t0 = self.onnx(), cpu_seconds(), time.perf_counter()
        result = process_file(path, source, self.settings, out=out)
        wall, cpu, onnx = time.perf_counter() - t0, cpu_seconds() - cpu0, self.onnx() - onnx0
        # Kept on disk so a resumed benchmark exports every document of the set, not just this process's.
        kept = out / RESULTS_DIR
        kept.mkdir(parents=True, exist_ok=True)
        with (kept / f"{path.name}.pkl").open("wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        pages = []
        if self.last_scan is not None:
            for p in self.last_scan.pages:
                pages.append({"page": p.number, "ocr": p.ocr_seconds, "other": p.other_seconds,
                              "ocr_cpu": p.ocr_cpu_seconds, "other_cpu": p.other_cpu_seconds, "lines": p.n_words,
                              "source": p.source.value, "rotation": p.rotation})
        current, peak = rss_mb()
        return {"source": source, "status": result.status.value, "n_pages": result.n_pages,
                "forms": len(result.forms), "wall": wall, "cpu": cpu, "onnx": onnx,
                "timings": dict(result.timings), "pages": pages, "rss_mb": current, "peak_rss_mb": peak,
                "error": result.error}

    def export(self, out: Path) -> dict[str, Any]:
        """forms.jsonl, the CSVs and the review queue of every document kept in ``out`` (in file order)."""
        from pipeline.export import export

        results = []
        for kept in sorted((out / RESULTS_DIR).glob("*.pkl")):
            with kept.open("rb") as fh:
                results.append(pickle.load(fh))
        files = export(out, results)
        return {"files": files, "documents": len(results)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in CONTENDERS:
        print(f"usage: python -m bench.worker {{{','.join(CONTENDERS)}}}", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    contender = CONTENDERS[args[0]]
    runner = Runner(contender)
    warm = runner.warm_up()
    current, peak = rss_mb()
    ready = {"contender": contender.name, "pid": os.getpid(), "engine_s": runner.engine_seconds,
             "catalogue_s": runner.catalogue_seconds, "warm_s": warm,
             "in_process_s": time.perf_counter() - t_start, "rss_mb": current, "peak_rss_mb": peak,
             "python": sys.executable}
    print("READY " + json.dumps(ready), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.get("cmd")
        if cmd == "quit":
            break
        if cmd == "doc":
            answer = runner.doc(Path(request["path"]), request["source"], request["set"], Path(request["out"]))
        elif cmd == "export":
            answer = runner.export(Path(request["out"]))
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        print("RESULT " + json.dumps(answer, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
