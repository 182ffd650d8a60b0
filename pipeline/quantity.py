"""Exact numbers from printed text: money, percents, comparison operators and units.

Money is always :class:`~decimal.Decimal`, never float. Every parser either returns a value or ``None``
(not a number of that kind); none raises on odd input. OCR slips that the column's type makes
unambiguous (thousands commas read as dots, ``%`` read as ``96``) are repaired and reported, so the
caller can send the repaired value to review.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

DASHES = {"", "—", "－", "-", "–", "——", "/", "一", "无", "-—", "—-", "\\", "N/A", "n/a", "／"}
# '一' is how OCR reads a lone '—'; '无' (none) is printed in numeric cells by some departments.

_OPERATORS: tuple[tuple[str, str], ...] = (
    ("大于等于", ">="), ("小于等于", "<="), ("不低于", ">="), ("不少于", ">="), ("不高于", "<="), ("不超过", "<="),
    ("不多于", "<="), ("≥", ">="), ("≧", ">="), ("⩾", ">="), ("≤", "<="), ("≦", "<="), ("⩽", "<="),
    (">=", ">="), ("=>", ">="), ("<=", "<="), ("=<", "<="), ("大于", ">"), ("高于", ">"), ("超过", ">"),
    ("小于", "<"), ("低于", "<"), ("等于", "="), ("≠", "!="), ("!=", "!="), (">", ">"), ("<", "<"), ("=", "="),
)
_NUMBER = r"[0-9]+(?:[.,][0-9]+)*"
_QUANTITY = re.compile(rf"^(?P<op>[^0-9.\-+]*?)\s*(?P<sign>[-+]?)(?P<num>{_NUMBER}|\.[0-9]+)\s*(?P<unit>.*)$")
_PLAIN_DECIMAL = re.compile(r"^[-+]?[0-9]+(?:\.[0-9]+)?$")


def to_ascii(text: str) -> str:
    """NFKC (full-width digits, ＞＝, ％ become ASCII) and no whitespace.

    Normalised again once the whitespace is gone: NFKC turns a spacing mark into a space and a combining
    one ("¯" into " ̄"), and without the space the combining mark joins the letter before it ("E¯" reads
    "Ē"), which must then be the composed character every later reading of it gives."""
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)))


def is_dash(text: str | None) -> bool:
    return text is None or to_ascii(text) in DASHES


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    value: Decimal
    repaired: bool = False
    note: str = ""


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def parse_number(text: str | None, *, money: bool = False) -> ParsedNumber | None:
    """A plain or thousands-separated number. ``7.862.478.04`` (commas read as dots) is repaired.

    Returns None for dashes, empty cells and anything that is not a number.
    """
    if text is None:
        return None
    s = to_ascii(text).replace("，", ",")
    for suffix in ("万元", "元", "分"):
        if s.endswith(suffix) and len(s) > len(suffix):
            s = s[: -len(suffix)]
    if s in DASHES:
        return None
    if _PLAIN_DECIMAL.match(s):
        value = _decimal(s)
        return ParsedNumber(value) if value is not None else None
    speck = re.fullmatch(r"[.,。，·'`]+([0-9][0-9.,]*)", s) or re.fullmatch(r"([-+]?[0-9][0-9.,]*[0-9])[.,。，·'`]+", s)
    if speck:
        # A scanner speck before or after the digits reads as a dot or comma: "467,294.20.", ".11".
        inner = parse_number(speck.group(1), money=money)
        if inner is not None:
            return ParsedNumber(inner.value, True, f"read as {text!r}; a speck taken for a dot removed")
        return None
    if not re.fullmatch(r"[-+]?[0-9][0-9.,]*", s):
        return None
    sign = ""
    if s[0] in "+-":
        sign, s = s[0], s[1:]
    groups = re.split(r"[.,]", s)
    seps = re.findall(r"[.,]", s)
    # "10,580,000.00": commas between groups of three, one decimal point at the end.
    if all(len(g) == 3 for g in groups[1:-1]) and groups[0] and len(groups[0]) <= 3:
        last_sep = seps[-1]
        last = groups[-1]
        if len(seps) == 1:
            if last_sep == "," and len(last) == 3:
                value = _decimal(sign + groups[0] + last)
                return ParsedNumber(value) if value is not None else None
            return None
        body = "".join(groups[:-1])
        if (last_sep == "." and len(last) != 3) or (money and last_sep == "." and len(last) <= 2):
            decimal_text = f"{sign}{body}.{last}"
            repaired = any(sep == "." for sep in seps[:-1])
        elif len(last) == 3 and all(sep == seps[0] for sep in seps):
            decimal_text = sign + body + last
            repaired = seps[0] == "."
        elif money and len(last) <= 2:
            decimal_text = f"{sign}{body}.{last}"
            repaired = True
        else:
            return None
        value = _decimal(decimal_text)
        if value is None:
            return None
        note = f"read as {text!r}; thousands separators repaired" if repaired else ""
        return ParsedNumber(value, repaired=repaired, note=note)
    return None


def format_decimal(value: Decimal) -> str:
    """The decimal as printed digits without separators or exponent (``10580000.00``)."""
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text


@dataclass(frozen=True, slots=True)
class ParsedPercent:
    value: Decimal  # in percent units: 100 means 100 %
    repaired: bool = False
    note: str = ""


def parse_percent(text: str | None, *, expect_percent: bool = True) -> ParsedPercent | None:
    """``100%``, ``99.5 %``, ``100`` (in a percent column) or OCR's ``74.5496`` for ``74.54%``."""
    if text is None:
        return None
    s = to_ascii(text)
    if s in DASHES:
        return None
    if s.endswith("%"):
        number = parse_number(s[:-1])
        return ParsedPercent(number.value) if number else None
    number = parse_number(s)
    if number is None:
        return None
    value = number.value
    decimals = len(s.split(".", 1)[1]) if "." in s else 0
    if expect_percent and s.endswith("96") and (value > 100 or decimals >= 3):
        # The '%' sign is often read as '96': 74.5496 -> 74.54 %, 10096 -> 100 %.
        repaired = parse_number(s[:-2].rstrip("."))
        if repaired is not None and repaired.value <= 100:
            return ParsedPercent(repaired.value, True, f"read as {text!r}; '96' taken for a misread '%'")
    if expect_percent and value <= 1 and "." in s and value != 0:
        return ParsedPercent(value * 100, True, f"read as {text!r}; taken as a fraction of 1")
    return ParsedPercent(value)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A target or actual value: ``>=10次`` is op '>=', value 10, unit '次'. Qualitative values
    (``完成``, ``及时``) have no op/value and the text as unit-less ``text``."""

    text: str
    op: str | None = None
    value: Decimal | None = None
    unit: str | None = None

    @property
    def is_numeric(self) -> bool:
        return self.value is not None


def _split_operator(s: str) -> tuple[str | None, str]:
    for printed, op in _OPERATORS:
        if s.startswith(printed):
            return op, s[len(printed):]
    return None, s


def parse_quantity(text: str | None) -> Quantity | None:
    """Split a printed target/actual into operator, number and unit; None for an empty cell."""
    if text is None:
        return None
    printed = text.strip()
    s = to_ascii(printed)
    if not s or s in DASHES - {"无"}:
        return None
    op, rest = _split_operator(s)
    match = _QUANTITY.match(rest)
    if match and not match.group("op"):
        number = parse_number(match.group("sign") + match.group("num"))
        unit = match.group("unit") or None
        # "2022年12月31日前" is a date, not a count of years.
        if number is not None and not (unit and re.match(r"^年\d", unit)):
            return Quantity(text=printed, op=op, value=number.value, unit=unit)
    return Quantity(text=printed, op=op, value=None, unit=None)


def quantity_text(quantity: Quantity) -> str:
    """The canonical printed form of a parsed quantity; parsing it again gives the same quantity."""
    if quantity.value is None:
        return quantity.text
    return f"{quantity.op or ''}{format_decimal(quantity.value)}{quantity.unit or ''}"


_VALUE_WORDS = {
    "完成", "已完成", "未完成", "基本完成", "全部完成", "按时完成", "及时", "按时", "有效", "有序", "良好", "优良",
    "优秀", "达标", "合格", "是", "否", "满意", "较好", "好", "高", "中", "低", "显著", "明显", "提升", "提高",
    "保障", "正常", "稳定", "持续", "长期", "符合", "达到", "实现", "无", "较高", "逐步提高", "有所提升", "到位",
    "按期", "合规", "规范", "优", "良", "达成", "已达成", "全覆盖", "不适用",
}


_SPECKS = ".。,，·'`、:：;；"


def strip_specks(text: str) -> str | None:
    """A short value cell with scanner specks read as punctuation around it ("完成。", ".无"): the value
    without them, or None when there is nothing to strip or what remains is not a known value."""
    s = to_ascii(text)
    core = s.strip(_SPECKS)
    if core == s or not core:
        return None
    if core in _VALUE_WORDS:
        return core
    quantity = parse_quantity(core)
    return core if quantity is not None and quantity.value is not None else None


_CJK = "\u4e00-\u9fff"
# Marks a scanner speck reads as: an ASCII dot or a middle dot after a Chinese character (before another or
# a digit: "2019年.11月"), at the start of Chinese text, or after its last character; a second mark right
# after a comma or full stop; a degree sign between a number and its Chinese unit ("15000°人").
_STRAY_MARK = re.compile(rf"(?<=[{_CJK}])[.·•](?=[{_CJK}0-9])|^[.·•。，,、](?=[{_CJK}])|(?<=[{_CJK}])[.·•]$"
                         rf"|(?<=[。，,、])[。.·•，,]|(?<=[0-9])[°º˚](?=[{_CJK}])")
# A full stop inside a name or a value (one phrase each): doubtful, though real text may have it.
_INNER_STOP = re.compile(rf"[{_CJK}]。(?=[{_CJK}])")


def strip_stray_marks(text: str) -> str | None:
    """OCR text without the punctuation a speck put into it ("2019年.11月" -> "2019年11月", "·参训",
    "控制." ), or None when there is none. Numbers are left alone ("1.建立" keeps its dot)."""
    stripped = _STRAY_MARK.sub("", text)
    return stripped if stripped != text and stripped else None


def has_inner_stop(text: str) -> bool:
    return _INNER_STOP.search(text) is not None


def looks_like_value(text: str) -> bool:
    """A target/actual-like cell: a number with operator/unit, a percent, or a short outcome word."""
    s = to_ascii(text)
    if not s:
        return False
    if s in _VALUE_WORDS:
        return True
    op, rest = _split_operator(s)
    if re.match(r"^[-+]?[0-9]", rest):
        unit = re.sub(r"^[-+]?[0-9][0-9.,]*", "", rest)
        return len(unit) <= 4 or unit.startswith("年")
    return op is not None and len(rest) <= 8


def looks_like_score(text: str) -> bool:
    """A weight/score cell: a plain number between 0 and 100."""
    s = to_ascii(text)
    if not _PLAIN_DECIMAL.match(s):
        return False
    value = _decimal(s)
    return value is not None and 0 <= value <= 100
