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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class LineInput:
    """A text-line crop resized to the recogniser's height and scaled to -1..1: ``pixels`` is
    (REC_HEIGHT, width) for a gray crop (the model's three channels are equal), (3, REC_HEIGHT, width) for
    an RGB one."""

    pixels: np.ndarray

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-1])


def _best_class_model(path: Path) -> bytes:
    """The recognition model with a TopK (k=1) over the classes appended to it: ONNX Runtime returns each
    step's best class and its probability, the input of CTC greedy decoding.

    The model's own output, a probability for each of 18,710 classes at every step (3 MB for a 320-pixel
    line), was copied out of ONNX Runtime and reduced by NumPy on one core, ~0.5 ms a line on the reader's
    thread. TopK picks the first of equal values as ``argmax`` does: the same classes and probabilities.
    The file itself is never changed.
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise EngineUnavailable(f"the onnx package is not installed ({exc}); "
                                f"install it with: {INSTALL_HINT} onnx") from exc
    model = onnx.load(str(path))
    graph = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if len(graph.output) != 1 or opset < 11:
        raise EngineUnavailable(f"{path.name} is not a recognition model this engine knows: one output of class "
                                f"probabilities and ONNX opset 11 or later expected (it has {len(graph.output)} "
                                f"output(s), opset {opset}); reinstall rapidocr")
    graph.initializer.append(helper.make_tensor("formrescue_top_k", TensorProto.INT64, [1], [1]))
    graph.node.append(helper.make_node("TopK", [graph.output[0].name, "formrescue_top_k"],
                                       ["best_prob", "best_class"], axis=-1, largest=1, sorted=1))
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("best_prob", TensorProto.FLOAT, None),
                         helper.make_tensor_value_info("best_class", TensorProto.INT64, None)])
    return model.SerializeToString()


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
        self._rec = self._session(_best_class_model(self.rec_path))
        self._rec_input = self._rec.get_inputs()[0].name
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise EngineUnavailable(f"{self.rec_path.name} has no character list in its metadata; reinstall rapidocr")
        # CTC classes: 0 = blank, then the model's characters, then the space the dictionary omits.
        self._chars = ["", *meta["character"].splitlines(), " "]
        self._det: Any = None  # loaded on first full-page call: the cell reader never needs it
        self.load_seconds = time.perf_counter() - start
        self.inference_seconds = 0.0  # time spent inside ONNX Runtime, for the benchmark

    def _session(self, model: Path | bytes) -> Any:
        ort = self._ort
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # Spinning threads burn the other core while Python prepares the next batch; measured slower here.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])

    # ------------------------------------------------------------------------------------------ recognition

    def prepare_lines(self, crops: Sequence[np.ndarray]) -> list[LineInput | None]:
        """Each line crop (RGB or gray) resized to the model's height and scaled as the model expects
        (None for an empty crop): the model's input, before padding to a batch's width."""
        import cv2

        out: list[LineInput | None] = []
        for crop in crops:
            if crop.size == 0:
                out.append(None)
                continue
            h, w = crop.shape[:2]
            width = max(1, math.ceil(REC_HEIGHT * w / max(1, h)))
            resized = cv2.resize(crop, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
            # A gray crop stays one channel: the model's three input channels are equal for it, so they are
            # filled from one plane (a third of the resizing and scaling of an RGB copy, the same floats).
            pixels = resized.astype(np.float32) / 127.5 - 1.0
            out.append(LineInput(pixels if pixels.ndim == 2 else pixels.transpose(2, 0, 1)))
        return out

    def _decode(self, best_prob: np.ndarray, best_class: np.ndarray) -> list[tuple[str, float, float]]:
        """CTC greedy decoding of each line's best class per step (from the model's TopK output)."""
        out = []
        for b in range(best_class.shape[0]):
            seq = best_class[b, :, 0]
            keep = seq != 0
            keep[1:] &= seq[1:] != seq[:-1]
            conf = best_prob[b, :, 0][keep]
            if conf.size == 0:
                out.append(("", 0.0, 0.0))
                continue
            chars = [self._chars[i] for i in seq[keep].tolist()]
            # The lowest confidence ignores spaces: whether "G60 科" has a space is the recogniser's
            # most frequent doubt, and the reader drops spaces next to Chinese characters anyway.
            solid = [p for p, ch in zip(conf.tolist(), chars, strict=True) if ch != " "]
            out.append(("".join(chars), float(conf.sum() / conf.size), min(solid, default=0.0)))
        return out

    def _batches(self, lines: Sequence[LineInput | None]) -> list[list[tuple[int, LineInput]]]:
        """(index, line) batches of ``rec_batch`` lines, sorted by width (empty crops left out)."""
        ready = sorted(((i, line) for i, line in enumerate(lines) if line is not None), key=lambda it: it[1].width)
        return [ready[start:start + self.rec_batch] for start in range(0, len(ready), self.rec_batch)]

    def _recognise_inputs(self, lines: Sequence[LineInput | None]) -> list[tuple[str, float, float]]:
        results: list[tuple[str, float, float]] = [("", 0.0, 0.0)] * len(lines)
        for batch in self._batches(lines):
            for (i, _), res in zip(batch, self._read_batch([line for _, line in batch]), strict=True):
                results[i] = res
        return results

    def recognize_lines_detailed(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, float]]:
        """(text, mean character confidence, lowest character confidence) for each line crop (RGB or gray)."""
        return self._recognise_inputs(self.prepare_lines(crops))

    def _read_batch(self, lines: Sequence[LineInput]) -> list[tuple[str, float, float]]:
        """One recognition batch: the lines padded to the batch's widest (a multiple of 8, at least
        ``min_rec_width``), run and decoded; the time in ONNX Runtime is counted."""
        width = max(self.min_rec_width, max(line.width for line in lines))
        width = int(math.ceil(width / 8) * 8)
        tensor = np.zeros((len(lines), 3, REC_HEIGHT, width), dtype=np.float32)  # 0 = mid gray, as PaddleOCR
        for k, line in enumerate(lines):
            tensor[k, :, :, :line.width] = line.pixels  # a gray plane fills all three channels
        t0 = time.perf_counter()
        best_prob, best_class = self._rec.run(None, {self._rec_input: tensor})
        self.inference_seconds += time.perf_counter() - t0
        return self._decode(best_prob, best_class)

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
