"""Exact numbers from printed text, OCR slips repaired only where the column type makes them certain."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.quantity import format_decimal, parse_number, parse_percent, parse_quantity, strip_stray_marks


@pytest.mark.parametrize(("text", "expected", "repaired"), [
    ("10,580,000.00", "10580000.00", False),
    ("7,862,478.04", "7862478.04", False),
    ("7.862.478.04", "7862478.04", True),  # commas read as dots
    ("467,294.2", "467294.2", False),
    ("１２３４", "1234", False),  # full-width digits
    ("0.00", "0.00", False),
    ("1,234", "1234", False),
    ("12.5万元", "12.5", False),
])
def test_money(text: str, expected: str, repaired: bool) -> None:
    parsed = parse_number(text, money=True)
    assert parsed is not None
    assert format_decimal(parsed.value) == expected
    assert parsed.repaired is repaired


@pytest.mark.parametrize("text", ["—", "-", "", "一", "/", "abc", "1,2,3", None])
def test_not_money(text: str | None) -> None:
    assert parse_number(text, money=True) is None


def test_money_is_decimal_not_float() -> None:
    parsed = parse_number("0.10")
    assert parsed is not None and isinstance(parsed.value, Decimal) and str(parsed.value) == "0.10"


@pytest.mark.parametrize(("text", "value", "repaired"), [
    ("100%", "100", False), ("99.87 %", "99.87", False), ("１００％", "100", False),
    ("74.5496", "74.54", True),  # '%' read as '96'
    ("100", "100", False),
])
def test_percent(text: str, value: str, repaired: bool) -> None:
    parsed = parse_percent(text)
    assert parsed is not None and format_decimal(parsed.value) == value and parsed.repaired is repaired


@pytest.mark.parametrize(("text", "op", "value", "unit"), [
    ("=100%", "=", "100", "%"), (">=10次", ">=", "10", "次"), ("≥85%", ">=", "85", "%"),
    ("＞＝85%", ">=", "85", "%"), ("<=30天", "<=", "30", "天"), (">50家", ">", "50", "家"),
    ("不少于40家", ">=", "40", "家"), ("15000人", None, "15000", "人"), ("完成", None, None, None),
    ("2022年12月31日前完成", None, None, None),
])
def test_quantity(text: str, op: str | None, value: str | None, unit: str | None) -> None:
    q = parse_quantity(text)
    assert q is not None
    assert (q.op, format_decimal(q.value) if q.value is not None else None, q.unit) == (op, value, unit)
    assert q.text == text


@pytest.mark.parametrize(("text", "expected"), [
    ("2019年.11月30日前", "2019年11月30日前"),  # a speck read as a dot
    ("按实际发生数结.算", "按实际发生数结算"),
    ("提高群众健康素养水·平", "提高群众健康素养水平"),
    ("·参训人员满意度", "参训人员满意度"),
    ("项目总成本控制.", "项目总成本控制"),
    ("结合本地实际，。受益人群覆盖率", "结合本地实际，受益人群覆盖率"),
    ("年度内项目按标准实施。。", "年度内项目按标准实施。"),
    (">=15000°人", ">=15000人"),  # a speck between a number and its unit read as a degree sign
    # nothing to take out: real punctuation and numbers stay
    ("根据上级文件要求，服务质量", None),
    ("1.建立健全长效管理机制", None),
    ("共10.5万元", None),
    ("年度内项目按标准实施。", None),
    ("≥90%", None),
    ("室温≤26℃", None),
])
def test_stray_marks_from_specks(text: str, expected: str | None) -> None:
    assert strip_stray_marks(text) == expected


def test_normalising_takes_stray_marks_out_of_ocr_text_only_and_flags_it() -> None:
    from pipeline.datamodel import Form, Indicator, Value
    from pipeline.normalize import normalize_form

    class NoCatalogue:
        def match_indicator(self, name: str, level2: str | None = None) -> None:
            return None

    def form(confidence: float) -> Form:
        fields = {"name": Value("提高群众健康素养水·平", confidence=confidence),
                  "target": Value("3000平方。米", confidence=confidence),
                  "deviation": Value("尤", confidence=confidence)}
        return Form(form_index=0, pages=(1,), header={}, funds={}, goals={}, indicators=(Indicator(fields),), total={})

    scanned = normalize_form(form(0.97), NoCatalogue())  # type: ignore[arg-type]
    assert scanned.indicators[0].text("name") == "提高群众健康素养水平"
    assert scanned.indicators[0].text("deviation") == "无"
    flagged = {f.field: f.reason for f in scanned.flags}
    assert flagged == {"indicators[0].name": "stray_punctuation", "indicators[0].target": "stray_punctuation",
                       "indicators[0].deviation": "ocr_repaired"}
    assert scanned.indicators[0].text("target") == "3000平方。米"  # doubtful, kept as read, put in front of a person
    printed = normalize_form(form(1.0), NoCatalogue())  # type: ignore[arg-type]
    assert printed.indicators[0].text("name") == "提高群众健康素养水·平" and not printed.flags


def test_a_traditional_character_in_ocr_text_is_flagged_as_a_likely_misread() -> None:
    from pipeline.datamodel import Form, Indicator, Value
    from pipeline.normalize import normalize_form

    class NoCatalogue:
        def match_indicator(self, name: str, level2: str | None = None) -> None:
            return None

    def form(name: str, confidence: float) -> Form:
        return Form(form_index=0, pages=(1,), header={}, funds={}, goals={},
                    indicators=(Indicator({"name": Value(name, confidence=confidence)}),), total={})

    read = normalize_form(form("补貼发放准确率", 0.99), NoCatalogue())  # type: ignore[arg-type]
    assert [(f.field, f.reason) for f in read.flags] == [("indicators[0].name", "traditional_character")]
    assert "貼" in read.flags[0].message
    assert not normalize_form(form("补贴发放准确率", 0.99), NoCatalogue()).flags  # type: ignore[arg-type]
    assert not normalize_form(form("补貼发放准确率", 1.0), NoCatalogue()).flags  # type: ignore[arg-type]
