"""Issue 8, fuzzing (hypothesis): the text-dump reader, the number/percent/operator parser, the normaliser and
the review-queue reader. Any input gives a result or a typed error (FormRescueError), never an unexpected
exception; normalising is idempotent; parsing the printed form of a parsed value gives the same value.

Examples are kept modest (the suite must stay fast); a failure prints the smallest input hypothesis found.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.datamodel import REVIEW_COLUMNS
from pipeline.errors import FormRescueError, InputError, QueueFileError
from pipeline.export import write_csv
from pipeline.ingest import decode_text, parse_text_dump
from pipeline.profile import label_key
from pipeline.quantity import (
    format_decimal,
    is_dash,
    looks_like_score,
    looks_like_value,
    parse_number,
    parse_percent,
    parse_quantity,
    quantity_text,
)
from pipeline.review_io import read_queue
from pipeline.text import clean_cell_text, compact

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like what the forms hold: Chinese, digits, separators, operators, units, HTML, odd spaces.
FORM_CHARS = ("0123456789.,，、%％+-－—–=＝<>＜＞≥≤≧≦ 　\t\n\r\u00a0\u200b\ufeff/\\()（）《》“”&;#<>pbr"
              "元万次年月日人个项分率不低于高小大等无是否完成及时满意度项目名称一二三级指标G60科创走廊建设")
form_text = st.text(alphabet=FORM_CHARS, max_size=40)
any_text = st.one_of(st.text(max_size=60), form_text)


# ------------------------------------------------------------------------------------------ text dumps


@FUZZ
@given(st.binary(max_size=400))
@example(b"\xff\xfe\x00\x00")  # a UTF-32 byte-order mark
@example(b"\x00" * 8)
@example("项目\t名称\n".encode("utf-16-le"))
def test_dump_reader_takes_any_bytes(data: bytes) -> None:
    try:
        decoded = decode_text(data, "x.txt")
    except InputError as exc:
        assert str(exc).startswith("x.txt: ")
        return
    table = parse_text_dump(decoded.text)
    assert table.n_rows == len(table.row_pages)
    assert all(cell.text == clean_cell_text(cell.raw) for cell in table.cells)


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co")), max_size=80)
       .map(lambda t: "项目名称\t" + t))
def test_dump_text_round_trips_through_utf8_and_utf16(text: str) -> None:
    for encoding in ("utf-8", "utf-16", "utf-8-sig"):
        assert decode_text(text.encode(encoding)).text == text


@FUZZ
@given(st.text(alphabet="项目名称绩效自评表年度指标值实际完成分值得分偏差原因一二三级预算执行率 \t\n0123456789.%",
               max_size=80).map(lambda t: "项目名称\t" + t))
def test_dump_text_round_trips_through_gbk(text: str) -> None:
    assert decode_text(text.encode("gbk")).text == text


@FUZZ
@given(any_text)
def test_dump_parser_takes_any_text(text: str) -> None:
    table = parse_text_dump(text)
    assert max(table.row_pages, default=1) >= 1
    assert len({(c.row, c.col) for c in table.cells}) == len(table.cells)


# ------------------------------------------------------------------------------ numbers and quantities


@FUZZ
@given(any_text)
def test_parsers_take_any_text(text: str) -> None:
    number = parse_number(text)
    money = parse_number(text, money=True)
    percent = parse_percent(text)
    quantity = parse_quantity(text)
    for parsed in (number, money, percent):
        assert parsed is None or parsed.value.is_finite()
    assert quantity is None or quantity.value is None or quantity.value.is_finite()
    is_dash(text)
    looks_like_value(text)
    looks_like_score(text)


@FUZZ
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**15, max_value=10**15, places=4))
def test_a_printed_decimal_parses_back(value: Decimal) -> None:
    printed = format_decimal(value)
    assert "E" not in printed and "," not in printed
    parsed = parse_number(printed)
    assert parsed is not None and parsed.value == value and not parsed.repaired


@FUZZ
@given(any_text)
@example("≠5")
@example("10,580,000.00元")
@example("=-0")
@example("0E¯")  # NFKC makes "¯" a space and a combining macron: without the space, it composes with the E
def test_a_printed_quantity_parses_back(text: str) -> None:
    quantity = parse_quantity(text)
    if quantity is None:
        return
    again = parse_quantity(quantity_text(quantity))
    assert again is not None
    assert (again.op, again.value, again.unit) == (quantity.op, quantity.value, quantity.unit)
    assert quantity_text(again) == quantity_text(quantity)


@FUZZ
@given(any_text)
@example("74.5496")
@example("0.5")
def test_a_printed_percent_parses_back(text: str) -> None:
    percent = parse_percent(text)
    if percent is None:
        return
    again = parse_percent(format_decimal(percent.value) + "%")
    assert again is not None and again.value == percent.value and not again.repaired


@FUZZ
@given(any_text)
def test_a_printed_number_parses_back(text: str) -> None:
    for money in (False, True):
        number = parse_number(text, money=money)
        if number is not None:
            again = parse_number(format_decimal(number.value), money=money)
            assert again is not None and again.value == number.value


# ---------------------------------------------------------------------------------------- normaliser


@FUZZ
@given(any_text)
@example("&lt;p&gt;")
@example("﹤p﹥")
@example("&amp;lt;b&amp;gt;x")
def test_normalising_is_idempotent(text: str) -> None:
    cleaned = clean_cell_text(text)
    assert clean_cell_text(cleaned) == cleaned
    assert cleaned == cleaned.strip()
    key = label_key(text)
    assert label_key(key) == key
    assert compact(compact(text)) == compact(text)


# ------------------------------------------------------------------------------------ review queue


def _queue_file(data: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-queue-"))
    path = folder / f"review_queue{suffix}"
    path.write_bytes(data)
    return path


HEADER = ",".join(REVIEW_COLUMNS).encode()


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: HEADER + b"\r\n" + b),
                 st.text(max_size=200).map(lambda t: HEADER + b"\n" + t.encode("utf-8"))))
@example(b"")
@example(HEADER + b'\n"unclosed')
@example(HEADER + b"\n" + b"a," * 200)
def test_queue_reader_takes_any_csv(data: bytes) -> None:
    try:
        rows = read_queue(_queue_file(data, ".csv"))
    except QueueFileError as exc:
        assert "review_queue.csv" in str(exc)
        return
    assert all(set(REVIEW_COLUMNS) <= set(row) for row in rows)


def _zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _real_workbook() -> dict[str, bytes]:
    """The parts of a small, valid queue workbook, for mutating one part at a time."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "review_queue"
    sheet.append(list(REVIEW_COLUMNS))
    sheet.append(["x"] * len(REVIEW_COLUMNS))
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


REAL_WORKBOOK = _real_workbook()
XLSX_PARTS = sorted(REAL_WORKBOOK)


def _mutated(part: str, data: bytes, cut: int) -> bytes:
    members = dict(REAL_WORKBOOK)
    if data:
        members[part] = data
    else:
        members[part] = members[part][: cut % (len(members[part]) + 1)]  # truncated XML
    return _zip_of(members)


@FUZZ
@given(st.one_of(st.binary(max_size=300),
                 st.dictionaries(st.sampled_from(XLSX_PARTS), st.binary(max_size=80), max_size=6).map(_zip_of),
                 st.builds(_mutated, st.sampled_from(XLSX_PARTS), st.binary(max_size=60), st.integers(0, 5000))))
def test_queue_reader_takes_any_xlsx(data: bytes) -> None:
    try:
        rows = read_queue(_queue_file(data, ".xlsx"))
    except QueueFileError as exc:
        assert "review_queue.xlsx" in str(exc)
        return
    assert all(set(REVIEW_COLUMNS) <= set(row) for row in rows)


@FUZZ
@given(st.lists(st.fixed_dictionaries({c: any_text for c in ("field", "value", "note", "corrected_value")}),
                max_size=5))
def test_queue_written_then_read_gives_the_same_values(rows: list[dict[str, str]]) -> None:
    path = _queue_file(b"", ".csv")
    write_csv(path, REVIEW_COLUMNS, rows)
    try:
        read = read_queue(path)
    except QueueFileError:
        pytest.fail("a queue formrescue wrote must read back")
    expected = [r for r in rows if any(v.strip() for v in r.values())]
    assert [{k: r[k] for k in ("field", "value", "note", "corrected_value")} for r in read] == expected


def test_errors_are_typed() -> None:
    assert issubclass(InputError, FormRescueError) and issubclass(QueueFileError, FormRescueError)
