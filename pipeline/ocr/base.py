"""The OCR engine protocol and the registry of engines by name.

An engine turns an RGB page image into text lines (:class:`~pipeline.datamodel.Word`). Engines import
their heavy packages inside their constructors, never at module import, and raise
:class:`EngineUnavailable` naming the extra to install when a package is missing. No engine ever
downloads a model: weights come from installed packages.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
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


@runtime_checkable
class LineRecognizer(Protocol):
    """An engine that can read text-line crops it did not detect itself (RapidOcrEngine can): the scan
    reader then recognises the lines inside each table cell instead of running page-wide detection."""

    def recognize_lines(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]: ...


class LazyEngine:
    """An engine loaded on first use: a document whose pages all have a text layer never loads OCR."""

    def __init__(self, name: str, factory: Callable[[], OcrEngine]) -> None:
        self.name = name
        self._factory = factory
        self._engine: OcrEngine | None = None

    def loaded(self) -> OcrEngine:
        if self._engine is None:
            self._engine = self._factory()
        return self._engine

    def recognize(self, image: np.ndarray) -> list[Word]:
        return self.loaded().recognize(image)


class LazyLineEngine(LazyEngine):
    def recognize_lines(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        engine = self.loaded()
        assert isinstance(engine, LineRecognizer)
        return engine.recognize_lines(crops)


def lazy_engine(name: str, factory: Callable[[], OcrEngine]) -> LazyEngine:
    """A lazily loaded engine with the same abilities as the registered engine class."""
    cls = _engine_class(name)
    return LazyLineEngine(name, factory) if hasattr(cls, "recognize_lines") else LazyEngine(name, factory)


# name -> ("module:Class", pip extra that provides it)
ENGINES: dict[str, tuple[str, str]] = {
    "rapidocr": ("pipeline.ocr.rapid:RapidOcrEngine", "formrescue (rapidocr and onnxruntime are core dependencies)"),
    "paddleocr": ("pipeline.ocr.paddle:PaddleOcrEngine", "formrescue[paddleocr]"),
    "paddleocr-fullpage": ("pipeline.ocr.paddle:PaddleOcrFullPageEngine", "formrescue[paddleocr]"),
}


def _engine_class(name: str) -> Any:
    try:
        target, extra = ENGINES[name]
    except KeyError:
        raise EngineUnavailable(f"unknown OCR engine {name!r}; choose one of: {', '.join(sorted(ENGINES))}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailable(f"OCR engine {name!r} is not installed ({exc}); "
                                f"install it with: pip install '{extra}'") from exc
    return getattr(module, class_name)


def get_engine(name: str, **options: Any) -> OcrEngine:
    """Build the engine registered under ``name``; unknown names and missing packages raise clearly."""
    engine: OcrEngine = _engine_class(name)(**options)
    return engine
