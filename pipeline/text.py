"""Text cleaning shared by every step: Unicode forms, HTML remnants, whitespace from wrapped cells."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?\s*>")
_SPACE = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
# A CJK character (or full-width punctuation) on either side of a space makes the space a wrap artefact.
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef“”‘’《》（）【】"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def strip_html(text: str) -> str:
    """Remove HTML tags such as ``<p>`` and unescape entities (``&nbsp;``)."""
    if "<" not in text and "&" not in text:
        return text
    return html.unescape(_TAG.sub("", text))


def clean_cell_text(text: str | None) -> str:
    """A cell's text as printed: no tags, no control characters, no spaces from wrapped lines.

    Spaces next to Chinese characters are artefacts of wrapping ("实现联盟高校学 分互认 机制"); spaces
    between Latin words or numbers are kept, collapsed to one.
    """
    if not text:
        return ""
    text = strip_html(text)
    text = _CONTROL.sub("", text).replace("\u3000", " ").replace("\u00a0", " ")
    text = _CJK_GAP.sub("", text)
    return _SPACE.sub(" ", text).strip()


def compact(text: str | None) -> str:
    """NFKC with all whitespace removed: the key for comparing labels and header words."""
    if not text:
        return ""
    return _SPACE.sub("", nfkc(strip_html(text)))


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)
