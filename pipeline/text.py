"""Text cleaning shared by every step: Unicode forms, HTML remnants, whitespace from wrapped cells."""

from __future__ import annotations

import functools
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
    """Remove HTML tags such as ``<p>`` and unescape entities (``&nbsp;``), until none is left: an escaped tag
    (``&lt;p&gt;``) is a tag once unescaped, and cleaning twice must give what cleaning once gave."""
    while "<" in text or "&" in text:
        stripped = html.unescape(_TAG.sub("", text))
        if stripped == text:
            break
        text = stripped  # strictly shorter (a tag removed or an entity made one character): this ends
    return text


@functools.lru_cache(maxsize=16384)
def clean_cell_text(text: str | None) -> str:
    """A cell's text as printed: no tags, no control characters, no spaces from wrapped lines.

    Spaces next to Chinese characters are artefacts of wrapping ("实现联盟高校学 分互认 机制"); spaces
    between Latin words or numbers are kept, collapsed to one. Memoised: every cell's text is cleaned
    at least twice, and cell texts repeat (labels, units, dashes).
    """
    if not text:
        return ""
    cleaned = _clean_once(text)
    # Removing spaces or controls can make a tag or an entity of what was around them ("<\u200bp>"): again.
    while "<" in cleaned or "&" in cleaned:
        again = _clean_once(cleaned)
        if again == cleaned:
            break
        cleaned = again
    return cleaned


def _clean_once(text: str) -> str:
    # Every space-like character becomes one space first, so a gap next to a Chinese character is seen whatever
    # space it was printed with; the result is stable under a second pass.
    text = strip_html(_CONTROL.sub("", text))
    text = _SPACE.sub(" ", text)
    return _CJK_GAP.sub("", text).strip()


def compact(text: str | None) -> str:
    """NFKC with all whitespace removed: the key for comparing labels and header words."""
    if not text:
        return ""
    key = _SPACE.sub("", nfkc(strip_html(text)))
    # NFKC can make a tag of look-alikes ("﹤p﹥"), and removing spaces can leave a sequence NFKC composes: again.
    while "<" in key or "&" in key or not unicodedata.is_normalized("NFKC", key):
        again = _SPACE.sub("", nfkc(strip_html(key)))
        if again == key:
            break
        key = again
    return key


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)
