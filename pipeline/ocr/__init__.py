"""OCR engines behind one small protocol; see :mod:`pipeline.ocr.base`."""

from pipeline.ocr.base import ENGINES, EngineUnavailable, OcrEngine, get_engine

__all__ = ["ENGINES", "EngineUnavailable", "OcrEngine", "get_engine"]
