"""The OCR engine protocol and the registry of engines by name.

An engine turns an RGB page image into text lines (:class:`~pipeline.datamodel.Word`). Engines import
their heavy packages inside their constructors, never at module import, and raise
:class:`EngineUnavailable` naming the extra to install when a package is missing. No engine ever
downloads a model: weights come from installed packages.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pipeline.datamodel import Word


class EngineUnavailable(RuntimeError):
    """The engine's packages or model files are not installed; the message says what to install."""


@runtime_checkable
class OcrEngine(Protocol):
    name: str

    def recognize(self, image: np.ndarray) -> list[Word]:
        """Detect and recognise text lines in an RGB image (H, W, 3, uint8); boxes in its pixels."""
        ...


# name -> ("module:Class", pip extra that provides it)
ENGINES: dict[str, tuple[str, str]] = {
    "rapidocr": ("pipeline.ocr.rapid:RapidOcrEngine", "formrescue (rapidocr and onnxruntime are core dependencies)"),
    "paddleocr": ("pipeline.ocr.paddle:PaddleOcrEngine", "formrescue[paddleocr]"),
}


def get_engine(name: str, **options: Any) -> OcrEngine:
    """Build the engine registered under ``name``; unknown names and missing packages raise clearly."""
    try:
        target, extra = ENGINES[name]
    except KeyError:
        raise EngineUnavailable(f"unknown OCR engine {name!r}; choose one of: {', '.join(sorted(ENGINES))}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailable(f"OCR engine {name!r} is not installed ({exc}); install it with: pip install '{extra}'") from exc
    engine: OcrEngine = getattr(module, class_name)(**options)
    return engine
