"""RapidOCR engine: the PP-OCRv6 small det/rec ONNX models shipped inside the ``rapidocr`` wheel.

Two ways in:

* :meth:`RapidOcrEngine.recognize` is the engine protocol: full-page text detection, then recognition
  of every detected line (what PaddleOCR does).
* :meth:`RapidOcrEngine.recognize_lines` recognises text-line crops the caller found itself. The scan
  reader finds the lines inside the ruled cells from the ink profile, so it skips the detector (the
  most expensive step on a 300 dpi page) and reads each line once.

Models are never downloaded: the files must be in the installed wheel (or in ``model_dir``); otherwise
:class:`~pipeline.ocr.base.EngineUnavailable` says what to install. The text-line orientation model is
not used (orientation is decided once per page by the reader). ONNX Runtime runs with a fixed, small
thread count and without busy-waiting threads, which is what pays on a 2-core office machine.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datamodel import BBox, Word
from pipeline.ocr.base import EngineUnavailable

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
INSTALL_HINT = "pip install 'rapidocr==3.10.*' onnxruntime"
REC_HEIGHT = 48


def default_model_dir() -> Path:
    """The ``models/`` folder of the installed rapidocr wheel (raises if rapidocr is not installed)."""
    try:
        import rapidocr
    except ImportError as exc:
        raise EngineUnavailable(f"the rapidocr package is not installed ({exc}); "
                                f"install it with: {INSTALL_HINT}") from exc
    return Path(rapidocr.__file__).resolve().parent / "models"


def default_threads() -> int:
    # One session per process: use both cores of the target machine, never more than it has; a worker
    # pool sets FORMRESCUE_OCR_THREADS to each worker's share of the cores.
    configured = os.environ.get("FORMRESCUE_OCR_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(2, os.cpu_count() or 1))


class RapidOcrEngine:
    """PP-OCRv6 small det + rec on ONNX Runtime (CPU). Thread-compatible, not thread-safe: one per process.

    Options: ``threads`` (intra-op threads of each session), ``det_max_side`` (the page is shrunk so its
    longer side is at most this before detection; RapidOCR's default 2000), ``rec_batch`` (line crops per
    inference call, sorted by width; default 1: each crop at its own width was the cheapest in CPU on
    the shared scans, and a line's reading then never depends on what it was batched with),
    ``min_rec_width`` (crops are padded to at least this width; PaddleOCR pads to 320, which doubled
    the CPU time here for the same text), ``text_score`` (lines recognised with a lower mean
    confidence are dropped by :meth:`recognize`), ``model_dir`` (a folder holding both model files),
    ``confidence`` ("min": a line's confidence is its least sure character; "mean": RapidOCR's score).
    """

    name = "rapidocr"

    def __init__(self, *, threads: int | None = None, det_max_side: int = 2000, det_min_side: int = 736,
                 rec_batch: int = 1, min_rec_width: int = 0, text_score: float = 0.5,
                 box_thresh: float = 0.5, unclip_ratio: float = 1.6, model_dir: str | Path | None = None,
                 confidence: str = "min") -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailable(f"onnxruntime is not installed ({exc}); install it with: {INSTALL_HINT}") from exc
        try:
            from rapidocr.ch_ppocr_det.utils import DBPostProcess
        except ImportError as exc:
            raise EngineUnavailable(f"the rapidocr package is not installed ({exc}); "
                                    f"install it with: {INSTALL_HINT}") from exc
        folder = Path(model_dir) if model_dir is not None else default_model_dir()
        self.det_path = folder / DET_MODEL
        self.rec_path = folder / REC_MODEL
        missing = [p.name for p in (self.det_path, self.rec_path) if not p.is_file()]
        if missing:
            raise EngineUnavailable(
                f"OCR model file(s) {', '.join(missing)} not found in {folder}; they ship inside the rapidocr wheel "
                f"(reinstall it with: pip install --force-reinstall 'rapidocr==3.10.*'). Models are never downloaded.")
        self.threads = threads or default_threads()
        self.det_max_side = det_max_side
        self.det_min_side = det_min_side
        self.rec_batch = max(1, rec_batch)
        self.min_rec_width = min_rec_width
        self.text_score = text_score
        if confidence not in ("min", "mean"):
            raise ValueError(f"confidence must be 'min' or 'mean', not {confidence!r}")
        self.confidence = confidence
        self._ort = ort
        self._post = DBPostProcess(thresh=0.3, box_thresh=box_thresh, max_candidates=1000, unclip_ratio=unclip_ratio,
                                   score_mode="fast", use_dilation=True)
        start = time.perf_counter()
        self._rec = self._session(self.rec_path)
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise EngineUnavailable(f"{self.rec_path.name} has no character list in its metadata; reinstall rapidocr")
        # CTC classes: 0 = blank, then the model's characters, then the space the dictionary omits.
        self._chars = np.array(["", *meta["character"].splitlines(), " "], dtype=object)
        self._det: Any = None  # loaded on first full-page call: the cell reader never needs it
        self.load_seconds = time.perf_counter() - start
        self.inference_seconds = 0.0  # time spent inside ONNX Runtime, for the benchmark

    def _session(self, path: Path) -> Any:
        ort = self._ort
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # Spinning threads burn the other core while Python prepares the next batch; measured slower here.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    # ------------------------------------------------------------------------------------------ recognition

    def _prepare(self, crop: np.ndarray, width: int) -> np.ndarray:
        import cv2

        h, w = crop.shape[:2]
        target = max(1, min(width, math.ceil(REC_HEIGHT * w / max(1, h))))
        resized = cv2.resize(crop, (target, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
        if resized.ndim == 2:
            resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB)
        out = np.zeros((3, REC_HEIGHT, width), dtype=np.float32)  # 0 after normalising = mid gray, as PaddleOCR
        out[:, :, :target] = resized.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
        return out

    def _decode(self, probs: np.ndarray) -> list[tuple[str, float, float]]:
        idx = probs.argmax(axis=2)
        # the probability at the argmax is the max: one pass over the (batch, steps, classes) output less
        best = np.take_along_axis(probs, idx[:, :, None], axis=2)[:, :, 0]
        out = []
        for b in range(idx.shape[0]):
            seq = idx[b]
            keep = seq != 0
            keep[1:] &= seq[1:] != seq[:-1]
            chars = seq[keep]
            if chars.size == 0:
                out.append(("", 0.0, 0.0))
                continue
            conf = best[b][keep]
            text = "".join(self._chars[chars])
            # The lowest confidence ignores spaces: whether "G60 科" has a space is the recogniser's
            # most frequent doubt, and the reader drops spaces next to Chinese characters anyway.
            solid = conf[self._chars[chars] != " "]
            out.append((text, float(conf.mean()), float(solid.min()) if solid.size else 0.0))
        return out

    def recognize_lines_detailed(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, float]]:
        """(text, mean character confidence, lowest character confidence) for each line crop (RGB or gray)."""
        results: list[tuple[str, float, float]] = [("", 0.0, 0.0)] * len(crops)
        ratios = [c.shape[1] / max(1, c.shape[0]) for c in crops]
        order = sorted(range(len(crops)), key=lambda i: ratios[i])
        for start in range(0, len(order), self.rec_batch):
            batch = [i for i in order[start:start + self.rec_batch] if crops[i].size > 0]
            if not batch:
                continue
            for i, res in zip(batch, self._read_batch(crops, ratios, batch), strict=True):
                results[i] = res
        return results

    def _read_batch(self, crops: Sequence[np.ndarray], ratios: Sequence[float],
                    batch: Sequence[int]) -> list[tuple[str, float, float]]:
        """One recognition batch: the crops resized to the model's height, padded to the batch's widest (a
        multiple of 8, at least ``min_rec_width``), run and decoded; the time in ONNX Runtime is counted."""
        width = max(self.min_rec_width, max(math.ceil(REC_HEIGHT * ratios[i]) for i in batch))
        width = int(math.ceil(width / 8) * 8)
        tensor = np.stack([self._prepare(crops[i], width) for i in batch])
        t0 = time.perf_counter()
        probs = self._rec.run(None, {self._rec.get_inputs()[0].name: tensor})[0]
        self.inference_seconds += time.perf_counter() - t0
        return self._decode(probs)

    def recognize_lines(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence 0..1) for each text-line crop, in the order given.

        The confidence is the lowest of the line's character confidences (spaces aside) with the default
        ``confidence="min"``: one doubtful digit in "7,862,478.04" is what review must see, and a
        line's mean hides it. ``confidence="mean"`` gives RapidOCR's usual score.
        """
        mean = self.confidence == "mean"
        return [(text, avg if mean else low) for text, avg, low in self.recognize_lines_detailed(crops)]

    # ------------------------------------------------------------------------------------------ detection

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Text-line quadrilaterals (4x2 float arrays, image pixels) found by the detector."""
        import cv2
        from rapidocr.ch_ppocr_det.utils import DetPreProcess

        if self._det is None:
            self._det = self._session(self.det_path)
        h, w = image.shape[:2]
        scale = min(1.0, self.det_max_side / max(h, w))
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else image
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
        tensor = DetPreProcess(self.det_min_side, "min", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])(small)
        if tensor is None:
            return []
        t0 = time.perf_counter()
        pred = self._det.run(None, {self._det.get_inputs()[0].name: tensor})[0]
        self.inference_seconds += time.perf_counter() - t0
        boxes, _ = self._post(pred, small.shape[:2])
        return [np.asarray(b, dtype=np.float32) / scale for b in boxes]

    def recognize(self, image: np.ndarray) -> list[Word]:
        """Detect and recognise every text line of an RGB page image; boxes in its pixels, top to bottom."""
        from rapidocr.utils.process_img import get_rotate_crop_image

        quads = self.detect(image)
        crops = [get_rotate_crop_image(image, q.copy()) for q in quads]
        words: list[Word] = []
        mean = self.confidence == "mean"
        for quad, (raw, avg, low) in zip(quads, self.recognize_lines_detailed(crops), strict=True):
            text, conf = raw.strip(), (avg if mean else low)
            if not text or avg < self.text_score:  # RapidOCR's filter, on the mean score
                continue
            box = BBox(float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()),
                       float(quad[:, 1].max()))
            words.append(Word(text, box, conf))
        words.sort(key=lambda wd: (round(wd.bbox.cy / 10), wd.bbox.x0))
        return words
