"""Prototypes of recognition speed changes, as a subclass of the shipped engine (pipeline/ocr/rapid.py is not
edited here): batches by padded pixel budget, ORT thread spinning and graph optimisation level as options,
and int8-quantised copies of the recognition model built into the cache dir (never into git).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import cache_dir
from pipeline.ocr.rapid import DET_MODEL, REC_HEIGHT, REC_MODEL, LineInput, RapidOcrEngine, default_model_dir

QUANT_KINDS = ("dynamic", "dynamic-conv", "static-conv")
# Calibration crops for static quantisation: line crops the reader cut from samples/scans (not benchmark pages).
CALIBRATION = Path(__file__).resolve().parent / "results" / "crops-calibration.pkl"


class BenchRapidEngine(RapidOcrEngine):
    """The shipped engine plus experimental options.

    ``pixel_budget``: a batch takes crops (sorted by aspect ratio) while ``lines x padded width x 48`` stays
    within this many pixels, instead of a fixed count (narrow lines go in big batches, wide ones in small).
    ``spinning``: let ORT worker threads spin between runs. ``graph_opt``: "all" (shipped) or "basic".
    """

    def __init__(self, *, pixel_budget: int | None = None, spinning: bool = False, graph_opt: str = "all",
                 **options: Any) -> None:
        self.pixel_budget = pixel_budget
        self.spinning = spinning
        self.graph_opt = graph_opt
        super().__init__(**options)

    def _session(self, model: Path | bytes) -> Any:
        ort = self._ort
        opts = ort.SessionOptions()
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if self.graph_opt == "all"
                                         else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=opts,
                                    providers=["CPUExecutionProvider"])

    def _batches(self, lines: Sequence[LineInput | None]) -> list[list[tuple[int, LineInput]]]:
        """The shipped batches, or batches by :attr:`pixel_budget` (lines sorted by width)."""
        if not self.pixel_budget:
            return super()._batches(lines)
        order = sorted(((i, line) for i, line in enumerate(lines) if line is not None), key=lambda it: it[1].width)
        out: list[list[tuple[int, LineInput]]] = []
        current: list[tuple[int, LineInput]] = []
        for i, line in order:  # ascending width: the newest line is the widest of its batch
            width = max(self.min_rec_width, line.width)
            if current and (len(current) + 1) * width * REC_HEIGHT > self.pixel_budget:
                out.append(current)
                current = []
            current.append((i, line))
        if current:
            out.append(current)
        return out


def quantized_model_dir(kind: str = "dynamic", source: Path | None = None) -> Path:
    """A model dir (det as shipped, rec int8) built once into ``<cache>/quantized/<key>/``.

    ``dynamic``: MatMul/Gemm weights int8 (activations quantised on the fly); ``dynamic-conv``: Conv too;
    ``static-conv``: Conv in QDQ form, int8 weights per tensor (the model's opset has no per-axis QDQ), uint8
    activations with ranges calibrated on :data:`CALIBRATION` (made by
    ``bench/experiments/rec_variants.py capture samples/scans/clean-122-000.pdf samples/scans/harsh-198-000.pdf
    --out bench/results/crops-calibration.pkl``).
    """
    if kind not in QUANT_KINDS:
        raise ValueError(f"unknown quantisation {kind!r}; choose from {', '.join(QUANT_KINDS)}")
    source = source or default_model_dir()
    digest = hashlib.sha256((source / REC_MODEL).read_bytes()).hexdigest()[:12]
    target = cache_dir() / "quantized" / f"{kind}-{digest}"
    if (target / REC_MODEL).is_file() and (target / DET_MODEL).is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if kind == "static-conv":
        ops = ["Conv"]
        _quantize_static(source / REC_MODEL, tmp / REC_MODEL)
    else:
        ops = ["MatMul", "Gemm"] + (["Conv"] if kind == "dynamic-conv" else [])
        quantize_dynamic(str(source / REC_MODEL), str(tmp / REC_MODEL), weight_type=QuantType.QInt8,
                         op_types_to_quantize=ops)
    shutil.copyfile(source / DET_MODEL, tmp / DET_MODEL)
    (tmp / "manifest.json").write_text(json.dumps({"kind": kind, "source": str(source), "rec_sha256": digest,
                                                   "ops": ops}, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _quantize_static(model: Path, target: Path) -> None:
    import pickle

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    with CALIBRATION.open("rb") as fh:
        batches = pickle.load(fh)
    crops = [c for batch, _ in batches for c in batch]
    engine = RapidOcrEngine(threads=1)
    name = engine._rec_input

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(crops[:160])

        def get_next(self) -> dict[str, np.ndarray] | None:
            crop = next(self.items, None)
            if crop is None:
                return None
            line = engine.prepare_lines([crop])[0]
            if line is None:
                return self.get_next()
            tensor = np.zeros((1, 3, REC_HEIGHT, int(math.ceil(max(8, line.width) / 8) * 8)), np.float32)
            tensor[0, :, :, :line.width] = line.pixels
            return {name: tensor}

    quantize_static(str(model), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=False,
                    op_types_to_quantize=["Conv"], activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
