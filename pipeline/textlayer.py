"""Words of a PDF page's text layer, in the pixels of that page rendered at ``scale`` (pypdfium2).

A "word" here is what an OCR engine would return: a run of characters on one line with no wide gap
in it (a gap wider than about one character height is a cell boundary, so the run is split there).
Boxes use the characters' loose boxes (font ascent to descent), so every line of one font size gets
the same height, like OCR line boxes. Spaces the PDF producer generated are kept inside a run.
"""

from __future__ import annotations

import ctypes
import functools
import struct
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from pipeline.datamodel import BBox, Word

# A page needs this many printable characters to count as having a real text layer; fewer is usually
# a stray page number or a producer's watermark on a scanned page.
MIN_CHARS = 4
# Share of replacement / private-use characters above which the layer is garbage (broken font maps).
MAX_BAD_SHARE = 0.2
_RECT = struct.Struct("4f")  # FS_RECTF: left, top, right, bottom


class _Char(NamedTuple):
    """A character and its box in pixels (top-left origin); a tuple: pages hold thousands of them."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float


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


def untyped(function: Any) -> Any:
    """A pypdfium2 raw function re-declared with its pointer arguments and result as plain addresses
    (ints): converting pypdfium2's typed pointers costs more than the call itself, in loops that call
    pdfium once per character or path segment."""

    def plain(kind: Any) -> Any:
        return ctypes.c_void_p if isinstance(kind, type) and issubclass(kind, ctypes._Pointer) else kind

    address = ctypes.cast(function, ctypes.c_void_p).value
    assert address is not None
    return ctypes.CFUNCTYPE(plain(function.restype), *(plain(kind) for kind in function.argtypes))(address)


_Calls = tuple[Callable[[int, int, int], int], Callable[[int, int], int]]


@functools.cache
def _calls() -> _Calls:
    """``FPDFText_GetLooseCharBox`` and ``FPDFText_GetUnicode`` on plain addresses (see :func:`untyped`)."""
    import pypdfium2.raw as pdfium_c

    return untyped(pdfium_c.FPDFText_GetLooseCharBox), untyped(pdfium_c.FPDFText_GetUnicode)


def _page_text(raw: Any, n_chars: int) -> str | None:
    """The text page's characters as one string (one call), or None when it is not one code point per
    character index with the code points ``FPDFText_GetUnicode`` gives: pdfium leaves control
    characters out of its text and writes U+FFFE where a character has no (or another) code point."""
    import pypdfium2.raw as pdfium_c

    if n_chars <= 0:
        return None
    buffer = (ctypes.c_ushort * (2 * n_chars + 2))()  # room for a surrogate pair per character
    written = pdfium_c.FPDFText_GetText(raw, 0, n_chars, buffer)
    if written <= 0:
        return None
    text = bytes(buffer)[:2 * (written - 1)].decode("utf-16-le", "surrogatepass")
    if len(text) != n_chars or "\ufffe" in text or "\x00" in text:
        return None
    return text


def _chars(page: Any, scale: float) -> list[_Char | None]:
    """Characters with pixel boxes in text-page order; ``None`` marks a line break the producer wrote.

    Spaces get empty boxes: they are only separators (:func:`group_words`, :func:`text_layer_words`).
    """
    import pypdfium2.raw as pdfium_c
    from pypdfium2 import PdfiumError

    rotation = int(page.get_rotation()) % 360
    crop: tuple[float, float, float, float] = tuple(float(v) for v in page.get_cropbox())  # type: ignore[assignment]
    textpage = page.get_textpage()
    try:
        out: list[_Char | None] = []
        raw = textpage.raw
        address = ctypes.cast(raw, ctypes.c_void_p).value or 0
        rect = pdfium_c.FS_RECTF()  # one struct reused: the per-character calls are most of the cost
        rect_address = ctypes.addressof(rect)
        unpack = _RECT.unpack_from  # left, top, right, bottom at once (four attribute reads cost more)
        left, top = crop[0], crop[3]
        get_box, get_unicode = _calls()  # on addresses: rect_address, and the text page's below
        new = tuple.__new__  # _Char(...) without the generated __new__'s Python frame
        n_chars = pdfium_c.FPDFText_CountChars(raw)
        if n_chars < 0:
            raise PdfiumError("Failed to get character count.")
        text = _page_text(raw, n_chars)
        for index in range(n_chars):
            if text is not None:
                ch = text[index]
            else:
                code = get_unicode(address, index)
                ch = chr(code) if 0 < code < 0x110000 else "\ufffd"
            if ch in "\r\n":
                if out and out[-1] is not None:
                    out.append(None)
                continue
            if ch.isspace():
                out.append(new(_Char, (ch, 0.0, 0.0, 0.0, 0.0)))
                continue
            if not get_box(address, index, rect_address):
                raise PdfiumError("Failed to get charbox.")
            r_left, r_top, r_right, r_bottom = unpack(rect)
            if rotation == 0:  # _to_device inlined (the same arithmetic): most pages are upright
                ax, ay, bx, by = ((r_left - left) * scale, (top - r_bottom) * scale,
                                  (r_right - left) * scale, (top - r_top) * scale)
            else:
                ax, ay = _to_device(r_left, r_bottom, crop, rotation, scale)
                bx, by = _to_device(r_right, r_top, crop, rotation, scale)
            # min / max spelled out (same results, ties included): builtin calls cost more here
            out.append(new(_Char, (ch, bx if bx < ax else ax, by if by < ay else ay,
                                   bx if bx > ax else ax, by if by > ay else ay)))
        return out
    finally:
        textpage.close()


def group_words(chars: Iterable[_Char | None], gap_factor: float = 0.9) -> list[Word]:
    """Runs of characters on one line whose gaps are under ``gap_factor`` x the line height.

    Two characters are on one line when their boxes overlap vertically by more than half the lower one.
    (Plain floats rather than boxes: this runs once per character of every text-layer page.)
    """
    words: list[Word] = []
    text: list[str] = []
    have = False  # a run is open: (bx0, by0, bx1, by1) its box, (lx1, ly0, ly1) its last character's
    bx0 = by0 = bx1 = by1 = lx1 = ly0 = ly1 = 0.0

    def flush() -> None:
        nonlocal text, have
        content = "".join(text).strip()
        if content and have:
            words.append(Word(content, BBox(bx0, by0, bx1, by1), 1.0))
        text, have = [], False

    for item in chars:
        if item is None:
            flush()
            continue
        ch, x0, y0, x1, y1 = item
        height = y1 - y0
        if ch.isspace() or x1 - x0 <= 0 or height <= 0:
            # Generated spaces have empty boxes: keep them as separators inside the current run.
            if text:
                text.append(" ")
            continue
        # min / max spelled out as conditionals (the same results, ties included): builtin calls cost more
        if have:
            gap = x0 - lx1
            last_h = ly1 - ly0
            line_h = height if height > last_h else last_h
            overlap = (y1 if y1 < ly1 else ly1) - (y0 if y0 > ly0 else ly0)
            same_line = overlap > 0.5 * (height if height < last_h else last_h)
            if not same_line or gap > gap_factor * line_h or gap < -0.5 * line_h:
                flush()
        text.append(ch)
        if have:
            if x0 < bx0:
                bx0 = x0
            if y0 < by0:
                by0 = y0
            if x1 > bx1:
                bx1 = x1
            if y1 > by1:
                by1 = y1
        else:
            bx0, by0, bx1, by1, have = x0, y0, x1, y1, True
        lx1, ly0, ly1 = x1, y0, y1
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
