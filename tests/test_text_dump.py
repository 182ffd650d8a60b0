"""Text dumps: encodings detected, page breaks kept, cells cleaned."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest import decode_text, parse_text_dump, sniff_kind
from pipeline.text import clean_cell_text

REPO = Path(__file__).resolve().parent.parent

SAMPLE = "财政项目支出绩效自评表\t\t\n项目名称\tG60科创走廊建设\n\n--\t--\n实现联盟高校学 分互认 机制\t=1次\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16"])
def test_encodings_are_detected(encoding: str) -> None:
    decoded = decode_text(SAMPLE.encode(encoding))
    assert decoded.text == SAMPLE


def test_mixed_encodings_decode_line_by_line() -> None:
    data = "项目名称\tA\n".encode() + "主管部门\t上海市\n".encode("gbk")
    decoded = decode_text(data)
    assert "主管部门" in decoded.text and decoded.issues[0].code == "mixed_encoding"


def test_binary_is_refused() -> None:
    with pytest.raises(InputError, match="binary"):
        decode_text(bytes(range(256)) * 8, "x.txt")


def test_page_breaks_and_cells() -> None:
    table = parse_text_dump(SAMPLE)
    assert table.n_rows == 3
    assert table.row_pages == (1, 1, 2)
    rows = table.rows()
    assert rows[2][0].text == "实现联盟高校学分互认机制"
    assert rows[2][0].raw == "实现联盟高校学 分互认 机制"


@pytest.mark.parametrize(("raw", "clean"), [
    ("<p>1.做好线上宣传</p>", "1.做好线上宣传"),
    ("加快建设长三角协同开放的经济 发展高地", "加快建设长三角协同开放的经济发展高地"),
    ("G60 科创走廊", "G60科创走廊"),
    ("Total  score 100", "Total score 100"),
    ("a&nbsp;b", "a b"),
])
def test_clean_cell_text(raw: str, clean: str) -> None:
    assert clean_cell_text(raw) == clean


@pytest.mark.parametrize(("head", "kind"), [
    (b"%PDF-1.7", "pdf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff\xe0", "jpeg"), (b"II*\x00", "tiff"),
    (b"PK\x03\x04", "zip"), (b"", "empty"), ("项目".encode(), "text"),
])
def test_sniff_kind(head: bytes, kind: str) -> None:
    assert sniff_kind(head) == kind


def test_a_level_label_nobody_knows_is_kept_as_printed_and_flagged(tmp_path: Path) -> None:
    """A 二级 cell read in part ("指标") is no known label: it is kept as printed and goes to review."""
    from pipeline.config import Settings
    from pipeline.process import process_file

    seed = REPO / "samples" / "text" / "000_9ccbaafc82c3a09f.txt"
    text = seed.read_text(encoding="utf-8").replace("\t数量指标\t完成接待任务", "\t指标\t完成接待任务", 1)
    damaged = tmp_path / "damaged.txt"
    damaged.write_text(text, encoding="utf-8")
    form = process_file(damaged, damaged.name, Settings()).forms[0]
    row = next(i for i, ind in enumerate(form.indicators) if ind.text("name") == "完成接待任务")
    assert form.indicators[row].text("level2") == "指标"
    assert any(f.field == f"indicators[{row}].level2" and f.reason == "label_unknown" for f in form.flags)
