"""OCR engines behind one small protocol; see :mod:`pipeline.ocr.base`."""

from pipeline.ocr.base import ENGINES, EngineUnavailable, LineRecognizer, OcrEngine, get_engine, lazy_engine

__all__ = ["ENGINES", "EngineUnavailable", "LineRecognizer", "OcrEngine", "get_engine", "lazy_engine"]
