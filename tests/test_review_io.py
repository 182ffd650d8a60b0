"""The review queue as reviewers see it, without Prefect: the workbook, Excel safety of every export,
reading reviewed files back, and refusing a bad file whole with row-level messages.

Output folders here are built with the library (process_file + the state store + export), which is what
the flows call; the flow round trip is in test_review_roundtrip.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from flows.cli import EXIT_USAGE, main
from pipeline.config import Settings
from pipeline.datamodel import DocumentResult, ReviewItem, Value
from pipeline.decisions import apply_stored_decisions, log_disagreements
from pipeline.errors import QueueFileError
from pipeline.export import read_csv
from pipeline.process import process_file
from pipeline.review import review_id
from pipeline.review_io import XLSX_NAME, apply_queue, check_queue, read_queue, write_queue_xlsx
from pipeline.store import Decision, StateStore
from pipeline.workspace import export_outputs
from tests.conftest import SEED, require_shared

OUTPUTS = ("forms.jsonl", "projects.csv", "indicators.csv", "review_queue.csv", XLSX_NAME)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


# -- helpers shared with test_review_roundtrip.py ------------------------------------------------------


def variant_text() -> str:
    """The seed with one indicator name the catalogue is unsure of and one score above its weight."""
    seed = SEED.read_text(encoding="utf-8")
    text = seed.replace("完成接待任务\t=50%", "主体班培训人次\t=50%", 1)
    text = text.replace("不少于40家。\t>=40家\t>=40家\t3\t3", "不少于40家。\t>=40家\t>=40家\t3\t30", 1)
    assert text.count("主体班培训人次") == 1 and text != seed
    return text


def doc_id_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rid(path: Path, field: str) -> str:
    return review_id(doc_id_of(path), field)


def edit_csv(src: Path, dst: Path, edits: dict[str, dict[str, str]]) -> None:
    """What a reviewer's tool does: the cells as they are (escapes included), decision columns filled in."""
    with src.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))
    header = records[0]
    for record in records[1:]:
        for column, value in edits.get(record[header.index("review_id")], {}).items():
            record[header.index(column)] = value
    with dst.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(records)


def edit_xlsx(src: Path, dst: Path, edits: dict[str, dict[str, Any]]) -> None:
    """A reviewer in Excel: open the workbook, type into the decision columns, save."""
    book = load_workbook(src)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        for column, value in edits.get(row[header.index("review_id")].value, {}).items():
            row[header.index(column)].value = value
    book.save(dst)


def library_out(out: Path, *inputs: Path) -> StateStore:
    """An output folder made the way the process flow makes it, without Prefect."""
    settings = Settings()
    store = StateStore.for_output(out)
    for path in inputs:
        result = process_file(path, str(path), settings)
        store.record_source(str(path), result.doc_id)
        store.save_result(result, settings.fingerprint())
    export_outputs(out, store)
    return store


def snapshot(out: Path, store: StateStore) -> dict[str, Any]:
    """Everything a failed apply must leave as it was."""
    files = {name: (out / name).read_bytes() for name in OUTPUTS}
    return {"files": files, "decisions": store.decisions(), "log": store.decision_log(), "aliases": store.aliases()}


@pytest.fixture()
def seed_out(tmp_path: Path) -> tuple[Path, StateStore]:
    require_shared()
    out = tmp_path / "out"
    return out, library_out(out, SEED)


# -- the workbook ----------------------------------------------------------------------------------------


def test_workbook_is_written_beside_the_csv_with_text_cells_and_a_dropdown(seed_out: tuple[Path, StateStore]) -> None:
    out, _ = seed_out
    csv_rows = read_csv(out / "review_queue.csv")
    book = load_workbook(out / XLSX_NAME)
    sheet = book.active
    assert sheet.title == "review_queue"
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert set(csv_rows[0]) <= set(header) and "image" in header
    assert header[:6] == ["field", "value", "candidates", "image", "decision", "corrected_value"]
    body = list(sheet.iter_rows(min_row=2))
    assert len(body) == len(csv_rows) == 11
    for row, expected in zip(body, csv_rows, strict=True):
        for cell, name in zip(row, header, strict=True):
            assert cell.number_format == "@", (name, cell.value)  # what a reviewer types stays text
            assert cell.value is None or cell.data_type == "s", (name, cell.value)  # never a number or formula
            if name != "image":
                assert (cell.value or "") == expected[name]
    assert sheet.column_dimensions["B"].width == 40  # value column readable
    [choice] = sheet.data_validations.dataValidation
    assert choice.formula1 == '"accept,correct,reject"'
    assert str(choice.sqref) == "E2:E12"
    # A readable phrase next to the stable code.
    polluted = next(r for r in read_queue(out / XLSX_NAME) if r["reason"] == "cell_polluted")
    assert "单元格混入表头文字" in polluted["message"]


def test_crops_are_shown_in_the_workbook(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "crops" / "doc").mkdir(parents=True)
    Image.new("RGB", (900, 120), "white").save(tmp_path / "crops" / "doc" / "a.png")
    items = [
        ReviewItem("a" * 16, "d" * 64, "scan.pdf", 1, "forms[0].indicators[0].name", "培训人次", (),
                   "low_ocr_confidence", "OCR is unsure", 0.5, crop="crops/doc/a.png"),
        ReviewItem("b" * 16, "d" * 64, "scan.pdf", 1, "forms[0].indicators[1].name", "会议", (),
                   "low_ocr_confidence", "OCR is unsure", 0.5, crop="crops/doc/missing.png"),
    ]
    path = tmp_path / XLSX_NAME
    write_queue_xlsx(path, items, root=tmp_path)
    sheet = load_workbook(path).active
    header = [c.value for c in sheet[1]]
    crop_col = header.index("crop") + 1
    assert len(sheet._images) == 1  # the file that exists is embedded, scaled to the cell
    image = sheet._images[0]
    assert image.anchor._from.row == 1 and image.anchor._from.col == header.index("image")
    shown = image.anchor.ext  # in EMU: 9525 per pixel
    assert (shown.width / 9525, shown.height / 9525) == (330, 44)  # 900 x 120 scaled to the column
    assert sheet.row_dimensions[2].height >= 44 * 0.75  # and the row is tall enough to show it
    for row in (2, 3):  # both rows link to their crop file (relative to the workbook)
        cell = sheet.cell(row=row, column=crop_col)
        assert cell.hyperlink is not None and cell.hyperlink.target == cell.value
    assert [r["crop"] for r in read_queue(path)] == ["crops/doc/a.png", "crops/doc/missing.png"]


# -- Excel safety of every export ------------------------------------------------------------------------


def _dangerous_result(result: DocumentResult) -> tuple[DocumentResult, dict[str, str]]:
    """The seed result with risky text in header, goals, indicators and flagged (queued) fields."""
    first, second = result.forms[0], result.forms[1]
    planted = {
        "project_name": "=HYPERLINK(\"http://x\",\"G60\")",
        "department": "+86 21 0000",
        "implementing_unit": "@SUM(A1)",
        "goals.expected": "\t制表符开头",
        "indicators[0].name": "-负号开头的指标",
        "indicators[0].target": "=100%",
        "indicators[0].deviation": "\r回车开头",
        "indicators[1].name": "'引号开头",
    }
    header = dict(first.header)
    for name in ("project_name", "department", "implementing_unit"):
        header[name] = replace(header[name], text=planted[name])
    goals = dict(first.goals)
    goals["expected"] = replace(goals["expected"], text=planted["goals.expected"])
    indicators = list(first.indicators)
    for i in (0, 1):
        fields = dict(indicators[i].fields)
        for key, text in planted.items():
            if key.startswith(f"indicators[{i}]."):
                fields[key.split(".", 1)[1]] = replace(fields.get(key.split(".", 1)[1], Value(None)), text=text)
        indicators[i] = replace(indicators[i], fields=fields)
    first = replace(first, header=header, goals=goals, indicators=tuple(indicators))
    # the two queued values of the second form
    queued = {"indicators[7].actual": "=1+1", "indicators[4].level2": "-质量指标"}
    indicators = list(second.indicators)
    for key, text in queued.items():
        i, name = int(key[11]), key.split(".", 1)[1]
        fields = dict(indicators[i].fields)
        fields[name] = replace(fields[name], text=text)
        indicators[i] = replace(indicators[i], fields=fields)
    second = replace(second, indicators=tuple(indicators))
    return replace(result, forms=(first, second)), {**planted, **{f"forms[1].{k}": v for k, v in queued.items()}}


def test_every_export_is_safe_in_excel_and_reads_back_exactly(tmp_path: Path) -> None:
    require_shared()
    settings = Settings()
    out = tmp_path / "out"
    store = StateStore.for_output(out)
    result, planted = _dangerous_result(process_file(SEED, str(SEED), settings))
    store.record_source(str(SEED), result.doc_id)
    store.save_result(result, settings.fingerprint())
    export_outputs(out, store)

    for name in ("projects.csv", "indicators.csv", "review_queue.csv"):
        raw = (out / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), f"{name} has no BOM"
        with (out / name).open(encoding="utf-8-sig", newline="") as handle:
            cells = [cell for record in csv.reader(handle) for cell in record]
        assert not [c for c in cells if c.startswith(TRIGGERS)], f"{name}: a cell Excel would run as a formula"
    projects = read_csv(out / "projects.csv")[0]
    for name in ("project_name", "department", "implementing_unit"):
        assert projects[name] == planted[name]
    assert projects["goals_expected"] == planted["goals.expected"]
    indicators = read_csv(out / "indicators.csv")
    assert indicators[0]["name"] == planted["indicators[0].name"]
    assert indicators[0]["target"] == "=100%" and indicators[0]["deviation"] == "\r回车开头"
    assert indicators[1]["name"] == "'引号开头"
    record = json.loads((out / "forms.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["project_name"] == planted["project_name"]

    # The queue: escaped in the CSV, a text cell holding exactly the original in the workbook.
    by_field = {r["field"]: r for r in read_csv(out / "review_queue.csv")}
    assert by_field["forms[1].indicators[7].actual"]["value"] == "=1+1"
    assert by_field["forms[1].indicators[4].level2"]["value"] == "-质量指标"
    sheet = load_workbook(out / XLSX_NAME).active
    header = [c.value for c in sheet[1]]
    cells = {row[header.index("field")].value: row[header.index("value")] for row in sheet.iter_rows(min_row=2)}
    for field in ("forms[1].indicators[7].actual", "forms[1].indicators[4].level2"):
        assert cells[field].data_type == "s" and cells[field].value == planted[field]
    # Both files, read back by our reader, pass the unchanged-value check and apply.
    for queue in (out / "review_queue.csv", out / XLSX_NAME):
        rows = {r["field"]: r for r in read_queue(queue)}
        assert rows["forms[1].indicators[7].actual"]["value"] == "=1+1"
        assert check_queue(queue, store).still_open == len(rows)


def test_risky_text_typed_by_a_reviewer_survives_both_files(seed_out: tuple[Path, StateStore],
                                                            tmp_path: Path) -> None:
    out, store = seed_out
    doc = doc_id_of(SEED)
    target = review_id(doc, "forms[1].indicators[7].actual")
    edit_xlsx(out / XLSX_NAME, tmp_path / "r.xlsx", {target: {"decision": "correct", "corrected_value": "=100%"}})
    edit_csv(out / "review_queue.csv", tmp_path / "r.csv",
             {target: {"decision": "correct", "corrected_value": "'+完成"}})  # escaped as our CSV escapes
    assert apply_queue(tmp_path / "r.xlsx", store).stored == 1
    assert store.decisions()[0].new_value == "=100%"
    assert apply_queue(tmp_path / "r.csv", store).stored == 1
    assert store.decisions()[0].new_value == "+完成"


# -- refusing a bad file ---------------------------------------------------------------------------------


def _bad_edits(doc: str) -> dict[str, dict[str, str]]:
    return {
        review_id(doc, "forms[0].indicators[10].level2"): {"decision": "accept"},  # fine on its own
        review_id(doc, "forms[0].indicators[12].level2"): {"value": "时效指标", "decision": "accept"},
        review_id(doc, "forms[0].indicators[13].level2"): {"decision": "maybe"},
        review_id(doc, "forms[0].indicators[18].level2"): {"decision": "correct"},
        review_id(doc, "forms[0].indicators[19].level2"): {"decision": "accept", "corrected_value": "社会效益指标"},
        review_id(doc, "forms[1].indicators[7].actual"): {"review_id": "0123456789abcdef", "decision": "reject"},
    }


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_bad_queue_is_refused_whole_with_row_messages(seed_out: tuple[Path, StateStore], tmp_path: Path,
                                                         kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    out, store = seed_out
    doc = doc_id_of(SEED)
    queue = tmp_path / f"reviewed.{kind}"
    edits = _bad_edits(doc)
    if kind == "csv":
        edit_csv(out / "review_queue.csv", queue, edits)
        # a duplicated row at the end, and a row that lost its quoting (one cell too many)
        with (out / "review_queue.csv").open(encoding="utf-8-sig", newline="") as handle:
            records = list(csv.reader(handle))
        with queue.open("a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(records[1])
            writer.writerow([*records[2], "extra"])
    else:
        edit_xlsx(out / XLSX_NAME, queue, edits)
        book = load_workbook(queue)
        sheet = book.active
        sheet.append([c.value for c in sheet[2]])  # a duplicated row
        book.save(queue)
    before = snapshot(out, store)

    with pytest.raises(QueueFileError) as caught:
        apply_queue(queue, store)
    problems = caught.value.problems
    text = "\n".join(problems)
    # Rows numbered as Excel shows them; each message names the row and the review id.
    rows = {r["review_id"]: int(r["_row"]) for r in read_queue(out / "review_queue.csv")}
    changed = review_id(doc, "forms[0].indicators[12].level2")
    assert (f"row {rows[changed]} (review id {changed}): the value column was changed from '质量指标' to "
            "'时效指标'") in text
    maybe = review_id(doc, "forms[0].indicators[13].level2")
    assert f"row {rows[maybe]} (review id {maybe}): decision 'maybe' is not one of accept, correct, reject" in text
    bare = review_id(doc, "forms[0].indicators[18].level2")
    assert f"row {rows[bare]} (review id {bare}): decision correct needs a corrected_value" in text
    mixed = review_id(doc, "forms[0].indicators[19].level2")
    assert f"row {rows[mixed]} (review id {mixed}): corrected_value is only read with decision correct" in text
    unknown = review_id(doc, "forms[1].indicators[7].actual")
    assert f"row {rows[unknown]} (review id 0123456789abcdef): unknown review id" in text
    assert f"row 13 (review id {review_id(doc, 'forms[0].indicators[10].level2')}): the same review id is on row 2" \
        in text
    if kind == "csv":
        assert "row 14 (review id" in text and "has 16 cells but the header has 15 columns" in text
    assert len(problems) == (7 if kind == "csv" else 6)
    assert snapshot(out, store) == before  # nothing stored, no output rewritten

    # The command says the same, names the file, and exits 2 (before any Prefect server is started).
    assert main(["review", "apply", str(queue), "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert str(queue) in err and f"row {rows[maybe]} (review id {maybe})" in err
    assert snapshot(out, store) == before


def test_wrong_columns_and_wrong_files_are_refused(seed_out: tuple[Path, StateStore], tmp_path: Path) -> None:
    out, store = seed_out
    text = (out / "review_queue.csv").read_text(encoding="utf-8-sig").replace("corrected_value", "fix", 1)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(text, encoding="utf-8-sig")
    with pytest.raises(QueueFileError, match=r"row 1: missing column\(s\) corrected_value"):
        read_queue(renamed)
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip")
    with pytest.raises(QueueFileError, match=r"not a readable \.xlsx"):
        check_queue(junk, store)
    with pytest.raises(QueueFileError, match=r"neither a \.csv nor a \.xlsx"):
        check_queue(out / "forms.jsonl", store)
    # A CSV saved by Excel's plain "CSV" (GBK on Chinese Windows) still reads.
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((out / "review_queue.csv").read_text(encoding="utf-8-sig").encode("gb18030"))
    assert [r["value"] for r in read_queue(gbk)] == [r["value"] for r in read_csv(out / "review_queue.csv")]


def test_numbers_in_corrections_are_checked_and_normalised(tmp_path: Path) -> None:
    require_shared()
    variant = tmp_path / "variant.txt"
    variant.write_text(variant_text(), encoding="utf-8")
    out = tmp_path / "out"
    store = library_out(out, variant)
    score = rid(variant, "forms[0].indicators[8].score")
    edit_csv(out / "review_queue.csv", tmp_path / "bad.csv",
             {score: {"decision": "correct", "corrected_value": "三分"}})
    with pytest.raises(QueueFileError, match=r"corrected_value '三分' is not a number"):
        apply_queue(tmp_path / "bad.csv", store)
    cat = rid(variant, "forms[0].indicators[4].catalogue_id")
    edit_csv(out / "review_queue.csv", tmp_path / "bad2.csv", {cat: {"decision": "correct", "corrected_value": "X-1"}})
    with pytest.raises(QueueFileError, match=r"'X-1' is not an id of the indicator catalogue"):
        apply_queue(tmp_path / "bad2.csv", store)
    edit_csv(out / "review_queue.csv", tmp_path / "ok.csv", {score: {"decision": "更正", "corrected_value": "３分"}})
    report = apply_queue(tmp_path / "ok.csv", store, applied_by="tester")
    assert report.stored == 1 and report.by_decision == {"correct": 1}
    [decision] = store.decisions()
    assert (decision.old_value, decision.new_value, decision.reviewer) == ("30", "3", "tester")
    # The same file again stores nothing new.
    assert apply_queue(tmp_path / "ok.csv", store).unchanged == 1
    assert len(store.decision_log()) == 1


# -- decisions against a new extraction ------------------------------------------------------------------


def test_a_rerun_that_reads_otherwise_keeps_the_decision_and_logs_it_once(seed_out: tuple[Path, StateStore]) -> None:
    _, store = seed_out
    doc = doc_id_of(SEED)
    field = "forms[1].indicators[7].actual"
    store.save_decisions([Decision(doc, field, review_id(doc, field), "correct", "完成", "已完成", "amy", None, 1.0)])
    raw = store.result(doc)
    assert raw is not None
    second = raw.forms[1]
    indicators = list(second.indicators)
    fields = dict(indicators[7].fields)
    fields["actual"] = replace(fields["actual"], text="完成率100%")
    indicators[7] = replace(indicators[7], fields=fields)
    reread = replace(raw, forms=(raw.forms[0], replace(second, indicators=tuple(indicators))))

    store.save_result(reread, "fp")
    assert [d.now_reads for d in log_disagreements(store, reread)] == ["完成率100%"]
    assert log_disagreements(store, reread) == []  # logged once
    events = [r for r in store.decision_log() if r["event"] == "disagreement"]
    assert len(events) == 1 and "完成率100%" in events[0]["note"] and "已完成" in events[0]["note"]
    applied, _ = apply_stored_decisions(reread, store.decisions())
    assert applied.forms[1].indicators[7].text("actual") == "已完成"  # the correction wins
    # The unchanged extraction is no disagreement at all.
    assert log_disagreements(store, raw) == []


def test_a_failed_document_is_acknowledged_not_corrected(tmp_path: Path) -> None:
    from pipeline.decisions import DOCUMENT_REVIEWED
    from pipeline.review_io import queue_status
    from pipeline.workspace import current_results

    letter = tmp_path / "letter.txt"
    letter.write_text("关于召开年度工作会议的通知\n各单位：\n定于下周一召开年度工作会议。\n", encoding="utf-8")
    out = tmp_path / "out"
    store = library_out(out, letter)
    [item] = read_csv(out / "review_queue.csv")
    assert item["field"] == "forms" and item["reason"].startswith("document_failed")
    edit_csv(out / "review_queue.csv", tmp_path / "fix.csv",
             {item["review_id"]: {"decision": "correct", "corrected_value": "G60"}})
    with pytest.raises(QueueFileError, match="cannot be corrected here"):
        apply_queue(tmp_path / "fix.csv", store)
    edit_csv(out / "review_queue.csv", tmp_path / "no.csv",
             {item["review_id"]: {"decision": "reject", "reviewer": "amy", "note": "a notice, not a form"}})
    assert apply_queue(tmp_path / "no.csv", store).stored == 1
    [result] = current_results(store)
    assert result.status.value == "failed"
    reviewed = [i.message for i in result.issues if i.code == DOCUMENT_REVIEWED]
    assert reviewed == ["rejected by amy: a notice, not a form"]
    status = queue_status(store)
    assert (status.open_items, status.decided) == (0, {"reject": 1})


def test_accepting_a_catalogue_candidate_stores_its_id_and_teaches_the_name(tmp_path: Path) -> None:
    require_shared()
    variant = tmp_path / "variant.txt"
    variant.write_text(variant_text(), encoding="utf-8")
    out = tmp_path / "out"
    store = library_out(out, variant)
    cat = rid(variant, "forms[0].indicators[4].catalogue_id")
    row = next(r for r in read_csv(out / "review_queue.csv") if r["review_id"] == cat)
    assert (row["value"], row["candidates"]) == ("", "QTY-001 培训人次 (0.73)")  # the reviewer sees the candidate
    edit_xlsx(out / XLSX_NAME, tmp_path / "r.xlsx", {cat: {"decision": "accept", "reviewer": "amy"}})
    assert apply_queue(tmp_path / "r.xlsx", store).aliases == 1
    [decision] = store.decisions()
    assert (decision.decision, decision.old_value, decision.new_value) == ("accept", "", "QTY-001")
    assert store.aliases() == [("主体班培训人次", "QTY-001")]
    export_outputs(out, store)
    record = json.loads((out / "forms.jsonl").read_text(encoding="utf-8").splitlines()[0])
    indicator = record["indicators"][4]
    assert (indicator["catalogue_id"], indicator["catalogue_name"], indicator["catalogue_decision"]) == (
        "QTY-001", "培训人次", "accept")
