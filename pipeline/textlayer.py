"""Words of a PDF page's text layer, in the pixels of that page rendered at ``scale`` (pypdfium2).

A "word" here is what an OCR engine would return: a run of characters on one line with no wide gap
in it (a gap wider than about one character height is a cell boundary, so the run is split there).
Boxes use the characters' loose boxes (font ascent to descent), so every line of one font size gets
the same height, like OCR line boxes. Spaces the PDF producer generated are kept inside a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.datamodel import BBox, Word

# A page needs this many printable characters to count as having a real text layer; fewer is usually
# a stray page number or a producer's watermark on a scanned page.
MIN_CHARS = 4
# Share of replacement / private-use characters above which the layer is garbage (broken font maps).
MAX_BAD_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class _Char:
    text: str
    box: BBox  # pixels, top-left origin


def _to_device(x: float, y: float, box: tuple[float, float, float, float], rotation: int, scale: float,
               ) -> tuple[float, float]:
    """PDF user space (bottom-left origin, points) -> rendered pixels, honouring /Rotate like pdfium."""
    left, bottom, right, top = box
    w, h = right - left, top - bottom
    u, v = x - left, top - y
    if rotation == 90:
        u, v = h - v, u
    elif rotation == 180:
        u, v = w - u, h - v
    elif rotation == 270:
        u, v = v, w - u
    return u * scale, v * scale


def _chars(page: Any, scale: float) -> list[_Char | None]:
    """Characters with pixel boxes in text-page order; ``None`` marks a line break the producer wrote."""
    import pypdfium2.raw as pdfium_c

    rotation = int(page.get_rotation()) % 360
    crop = tuple(float(v) for v in page.get_cropbox())
    textpage = page.get_textpage()
    try:
        out: list[_Char | None] = []
        for index in range(textpage.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
            ch = chr(code) if 0 < code < 0x110000 else "\ufffd"
            if ch in "\r\n":
                if out and out[-1] is not None:
                    out.append(None)
                continue
            x0, y0, x1, y1 = textpage.get_charbox(index, loose=True)
            ax, ay = _to_device(x0, y0, crop, rotation, scale)  # type: ignore[arg-type]
            bx, by = _to_device(x1, y1, crop, rotation, scale)  # type: ignore[arg-type]
            out.append(_Char(ch, BBox(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))))
        return out
    finally:
        textpage.close()


def _same_line(a: BBox, b: BBox) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap > 0.5 * min(a.height, b.height)


def group_words(chars: Iterable[_Char | None], gap_factor: float = 0.9) -> list[Word]:
    """Runs of characters on one line whose gaps are under ``gap_factor`` x the line height."""
    words: list[Word] = []
    text: list[str] = []
    box: BBox | None = None
    last: BBox | None = None

    def flush() -> None:
        nonlocal text, box, last
        content = "".join(text).strip()
        if content and box is not None:
            words.append(Word(content, box, 1.0))
        text, box, last = [], None, None

    for item in chars:
        if item is None:
            flush()
            continue
        if item.text.isspace() or item.box.width <= 0 or item.box.height <= 0:
            # Generated spaces have empty boxes: keep them as separators inside the current run.
            if text:
                text.append(" ")
            continue
        if last is not None and box is not None:
            gap = item.box.x0 - last.x1
            line_h = max(last.height, item.box.height)
            if not _same_line(last, item.box) or gap > gap_factor * line_h or gap < -0.5 * line_h:
                flush()
        text.append(item.text)
        box = item.box if box is None else box.union(item.box)
        last = item.box
    flush()
    return words


def text_layer_words(pdf_page: Any, scale: float) -> tuple[Word, ...] | None:
    """Text-layer words of ``pdf_page`` (a ``pypdfium2.PdfPage``) in pixels of ``page.render(scale=scale)``.

    ``None`` when the page has no real text layer (a plain scan, or only a few stray characters), so
    the caller OCRs the image instead.
    """
    chars = _chars(pdf_page, scale)
    printable = [c for c in chars if c is not None and not c.text.isspace()]
    if len(printable) < MIN_CHARS:
        return None
    bad = sum(1 for c in printable if c.text == "\ufffd" or "\ue000" <= c.text <= "\uf8ff")
    if bad > MAX_BAD_SHARE * len(printable):
        return None
    words = group_words(chars)
    return tuple(words) if words else None
