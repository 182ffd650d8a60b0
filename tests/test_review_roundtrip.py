"""The review loop through the ``formrescue`` command and its Prefect flows: run, review the queue as a
reviewer would (in the CSV with a CSV tool, in the workbook with Excel), ``review apply``, and check the
outputs changed exactly at the decided fields; then rerun and check nothing decided is lost or asked again.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from flows.cli import EXIT_OK, main
from pipeline.export import read_csv
from pipeline.review_io import XLSX_NAME
from pipeline.store import StateStore
from tests.conftest import SCANS, SEED, require_shared
from tests.test_review_io import doc_id_of, edit_csv, edit_xlsx, rid, variant_text

SCAN = SCANS / "noisy-20-000.pdf"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flat(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


@dataclass
class Outputs:
    """The outputs of a folder as dicts of 'where' -> value, to diff two moments."""

    forms: dict[str, Any]
    indicators: dict[str, str]
    projects: dict[str, str]
    queue: dict[str, dict[str, str]]  # review_id -> row
    raw: dict[str, bytes]

    @staticmethod
    def read(out: Path, names: dict[str, str]) -> Outputs:
        forms: dict[str, Any] = {}
        for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            key = f"{names[record['doc_id']]}#{record['form_index']}"
            forms.update({f"{key}.{k}": v for k, v in _flat(record).items()})
        indicators = {f"{names[r['doc_id']]}#{r['form_index']}.indicators[{r['indicator_index']}].{k}": v
                      for r in read_csv(out / "indicators.csv") for k, v in r.items()}
        projects = {f"{names[r['doc_id']]}#{r['form_index']}.{k}": v for r in read_csv(out / "projects.csv")
                    for k, v in r.items()}
        queue = {r["review_id"]: r for r in read_csv(out / "review_queue.csv")}
        raw = {n: (out / n).read_bytes() for n in ("forms.jsonl", "indicators.csv", "projects.csv")}
        return Outputs(forms, indicators, projects, queue, raw)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


@dataclass
class Reviewed:
    kind: str
    inbox: Path
    out: Path
    names: dict[str, str]  # doc_id -> "seed" | "variant"
    before: Outputs
    after: Outputs
    decided: dict[str, tuple[str, str]]  # review_id -> (decision, doc/field)
    printed: str


# What the reviewer decides: (document, field) -> cells typed. Covers accept, correct (a 二级 label, a score,
# a catalogue id), reject; both items of the seed's second form, so that form has nothing left open.
def _decisions(kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    score: Any = 3 if kind == "xlsx" else "3"  # Excel may store a typed number as a number
    return {
        ("seed", "forms[0].indicators[10].level2"): {"decision": "accept", "reviewer": "amy"},
        ("seed", "forms[0].indicators[13].level2"): {"decision": "reject", "reviewer": "amy", "note": "no 二级 here"},
        ("seed", "forms[1].indicators[4].level2"): {"decision": "correct", "corrected_value": "时效指标",
                                                    "reviewer": "amy"},
        ("seed", "forms[1].indicators[7].actual"): {"decision": "accept", "reviewer": "bo"},
        ("variant", "forms[0].indicators[8].score"): {"decision": "correct", "corrected_value": score,
                                                      "reviewer": "bo", "note": "printed 30, form says 3"},
        ("variant", "forms[0].indicators[4].catalogue_id"): {"decision": "correct", "corrected_value": "QTY-001",
                                                             "reviewer": "bo"},
    }


@pytest.fixture(scope="module", params=["csv", "xlsx"])
def reviewed(request: pytest.FixtureRequest, prefect_server: None,
             tmp_path_factory: pytest.TempPathFactory) -> Reviewed:
    require_shared()
    kind: str = request.param
    base = tmp_path_factory.mktemp(f"review-{kind}")
    inbox, out = base / "inbox", base / "out"
    inbox.mkdir()
    shutil.copy(SEED, inbox / "seed.txt")
    (inbox / "variant.txt").write_text(variant_text(), encoding="utf-8")
    names = {doc_id_of(inbox / "seed.txt"): "seed", doc_id_of(inbox / "variant.txt"): "variant"}
    assert main(["run", str(inbox), "--out", str(out), "--no-progress"]) == EXIT_OK
    before = Outputs.read(out, names)

    edits: dict[str, dict[str, Any]] = {}
    decided: dict[str, tuple[str, str]] = {}
    for (doc, field), cells in _decisions(kind).items():
        review = rid(inbox / f"{doc}.txt", field)
        assert review in before.queue, f"{doc} {field} is not in the queue"
        edits[review] = cells
        decided[review] = (cells["decision"], f"{doc}:{field}")
    queue = base / f"reviewed.{kind}"
    if kind == "csv":
        edit_csv(out / "review_queue.csv", queue, edits)
    else:
        edit_xlsx(out / XLSX_NAME, queue, edits)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["review", "apply", str(queue), "--out", str(out)]) == EXIT_OK
    return Reviewed(kind, inbox, out, names, before, Outputs.read(out, names), decided, printed.getvalue())


def test_apply_changes_the_outputs_exactly_at_the_decided_fields(reviewed: Reviewed) -> None:
    assert "6 decisions stored (2 accept, 3 correct, 1 reject)" in reviewed.printed
    changed = _changed(reviewed.before.forms, reviewed.after.forms)
    values = {k: v for k, v in changed.items() if not k.endswith((".confidence", ".review_items", ".status"))
              and ".issues" not in k}
    assert values == {
        "seed#0.indicators[13].level2": ("质量指标", None),  # rejected
        "seed#1.indicators[4].level2": ("质量指标", "时效指标"),  # corrected label
        "variant#0.indicators[8].score": (30, 3),  # corrected score, still a JSON number
        "variant#0.indicators[4].catalogue_id": (None, "QTY-001"),
        "variant#0.indicators[4].catalogue_name": (None, "培训人次"),
        "variant#0.indicators[4].catalogue_score": (0.7273, 1.0),
        "variant#0.indicators[4].catalogue_decision": ("review", "accept"),
    }
    # A decided value is certain; nothing else moved.
    confidence = {k for k in changed if k.endswith(".confidence")}
    assert confidence <= {"seed#0.indicators[10].confidence", "seed#0.indicators[13].confidence",
                          "seed#1.indicators[4].confidence", "seed#1.indicators[7].confidence",
                          "variant#0.indicators[8].confidence", "variant#0.indicators[4].confidence"}
    assert all(after == 1.0 for k, (_, after) in changed.items() if k in confidence)
    # The validation issues the corrected score caused are gone with it.
    issues_before = [v for k, v in reviewed.before.forms.items() if k.startswith("variant#0.issues")]
    issues_after = [v for k, v in reviewed.after.forms.items() if k.startswith("variant#0.issues")]
    assert any("score_gt_weight" in str(v) for v in issues_before)
    assert not any("validation_failed" in str(v) for v in issues_after)

    cells = _changed(reviewed.before.indicators, reviewed.after.indicators)
    assert {k for k in cells if not k.endswith(".confidence")} == {
        "seed#0.indicators[13].level2", "seed#1.indicators[4].level2", "variant#0.indicators[8].score",
        "variant#0.indicators[4].catalogue_id", "variant#0.indicators[4].catalogue_name",
        "variant#0.indicators[4].catalogue_score",
    }
    assert cells["variant#0.indicators[8].score"] == ("30", "3")
    projects = _changed(reviewed.before.projects, reviewed.after.projects)
    assert set(projects) == {"seed#0.review_items", "seed#1.review_items", "seed#1.status",
                             "variant#0.review_items", "variant#0.issues"}


def test_a_form_with_nothing_open_becomes_clean_and_decided_items_leave_the_queue(reviewed: Reviewed) -> None:
    after = reviewed.after
    assert (reviewed.before.forms["seed#1.status"], after.forms["seed#1.status"]) == ("needs_review", "clean")
    assert after.forms["seed#1.review_items"] == 0
    assert after.forms["seed#0.status"] == "needs_review"  # other items of it are still open
    assert not set(reviewed.decided) & set(after.queue)
    # Items the decisions resolved: the weight and the total that the wrong score made doubtful (the scores
    # did not add up, and the doubtful score, above its weight, took the blame instead of the whole table).
    gone = set(reviewed.before.queue) - set(after.queue) - set(reviewed.decided)
    assert {reviewed.before.queue[g]["field"] for g in gone} == {"forms[0].indicators[8].weight",
                                                                 "forms[0].total.score"}
    wrong_score = next(row for row in reviewed.before.queue.values()
                       if row["field"] == "forms[0].indicators[8].score" and "variant" in row["source"])
    assert wrong_score["candidates"].startswith("3 ")  # the value the totals ask for, offered to the reviewer
    assert set(after.queue) < set(reviewed.before.queue)  # nothing new was asked
    for name in ("review_queue.csv", XLSX_NAME):
        assert (reviewed.out / name).exists()


def test_the_audit_trail_records_who_decided_what(reviewed: Reviewed) -> None:
    store = StateStore.for_output(reviewed.out)
    log = {row["review_id"]: row for row in store.decision_log()}
    assert set(log) == set(reviewed.decided)
    score = log[rid(reviewed.inbox / "variant.txt", "forms[0].indicators[8].score")]
    assert (score["event"], score["decision"], score["old_value"], score["new_value"], score["reviewer"]) == (
        "decided", "correct", "30", "3", "bo")
    assert score["note"] == "printed 30, form says 3" and score["decided_at"] > 0
    assert score["doc_id"] == doc_id_of(reviewed.inbox / "variant.txt")
    label = log[rid(reviewed.inbox / "seed.txt", "forms[1].indicators[4].level2")]
    assert (label["old_value"], label["new_value"], label["reviewer"]) == ("质量指标", "时效指标", "amy")
    rejected = log[rid(reviewed.inbox / "seed.txt", "forms[0].indicators[13].level2")]
    assert (rejected["decision"], rejected["old_value"], rejected["new_value"]) == ("reject", "质量指标", None)
    assert store.aliases() == [("主体班培训人次", "QTY-001")]


def test_status_reports_open_and_decided(reviewed: Reviewed, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "status", str(reviewed.out)]) == EXIT_OK
    text = capsys.readouterr().out
    open_items = len(reviewed.after.queue)
    assert f"open review items: {open_items} in 2 document(s)" in text
    assert "level2_ambiguous" in text and "二级指标归属不确定" in text
    assert "decided: 2 accept, 3 correct, 1 reject · learned aliases: 1" in text
    assert "forms: 1 clean, 3 needs_review" in text


def test_rerun_keeps_every_decision_and_learned_aliases_match_at_once(reviewed: Reviewed) -> None:
    out, inbox = reviewed.out, reviewed.inbox
    # A new document printing the same indicator name, processed with the rerun.
    newcomer = inbox / "variant-2023.txt"
    newcomer.write_text(variant_text() + "\n", encoding="utf-8")
    names = {**reviewed.names, doc_id_of(newcomer): "newcomer"}
    assert main(["run", str(inbox), "--out", str(out), "--no-progress", "--force"]) == EXIT_OK
    rerun = Outputs.read(out, names)

    # Everything decided is in place, exactly as after the apply, and not asked again.
    for key, value in reviewed.after.forms.items():
        assert rerun.forms[key] == value, key
    for key, value in reviewed.after.indicators.items():
        assert rerun.indicators[key] == value, key
    assert not set(reviewed.decided) & set(rerun.queue)
    assert {r for r in rerun.queue if names[rerun.queue[r]["doc_id"]] != "newcomer"} == set(reviewed.after.queue)
    # The catalogue correction taught the name: the newcomer's row is matched, with no review item.
    assert rerun.forms["newcomer#0.indicators[4].catalogue_id"] == "QTY-001"
    assert rerun.forms["newcomer#0.indicators[4].catalogue_decision"] == "accept"
    newcomer_fields = {row["field"] for row in rerun.queue.values() if names[row["doc_id"]] == "newcomer"}
    assert "forms[0].indicators[4].catalogue_id" not in newcomer_fields
    assert "forms[0].indicators[8].score" in newcomer_fields  # its own wrong score is still asked
    # The stored extraction of the reviewed document matches it on its own now, too.
    store = StateStore.for_output(out)
    raw = store.result(doc_id_of(inbox / "variant.txt"))
    assert raw is not None and not [f for f in raw.forms[0].flags if f.reason == "catalogue_ambiguous"]
    # Reading the same values again is no disagreement.
    assert not [r for r in store.decision_log() if r["event"] == "disagreement"]


def test_a_rerun_reading_otherwise_keeps_the_correction_and_logs_once(prefect_server: None, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared()
    import flows.process

    out = tmp_path / "out"
    assert main(["run", str(SEED), "--out", str(out), "--no-progress"]) == EXIT_OK
    field = "forms[1].indicators[7].actual"
    target = rid(SEED, field)
    edit_csv(out / "review_queue.csv", tmp_path / "r.csv",
             {target: {"decision": "correct", "corrected_value": "已完成"}})
    assert main(["review", "apply", str(tmp_path / "r.csv"), "--out", str(out)]) == EXIT_OK

    original = flows.process.run_document

    def reads_otherwise(*args: Any, **kwargs: Any) -> Any:  # a new engine now reads the cell differently
        result = original(*args, **kwargs)
        second = result.forms[1]
        indicators = list(second.indicators)
        fields = dict(indicators[7].fields)
        fields["actual"] = replace(fields["actual"], text="完成率100%")
        indicators[7] = replace(indicators[7], fields=fields)
        return replace(result, forms=(result.forms[0], replace(second, indicators=tuple(indicators))))

    monkeypatch.setattr(flows.process, "run_document", reads_otherwise)
    for _ in range(2):
        assert main(["run", str(SEED), "--out", str(out), "--no-progress", "--force"]) == EXIT_OK
    records = [json.loads(line) for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records[1]["indicators"][7]["actual"] == "已完成"  # the correction wins
    events = [r for r in StateStore.for_output(out).decision_log() if r["event"] == "disagreement"]
    assert len(events) == 1 and events[0]["field"] == field and "完成率100%" in events[0]["note"]


@pytest.mark.slow
def test_scan_round_trip(prefect_server: None, tmp_path: Path) -> None:
    """A scanned PDF through OCR (~1 min): its low-confidence items reviewed in the workbook and applied."""
    require_shared()
    out = tmp_path / "out"
    assert main(["run", str(SCAN), "--out", str(out), "--no-progress"]) == EXIT_OK
    queue = read_csv(out / "review_queue.csv")
    assert queue, "the scan produced no review items"
    # The source region of each item sits next to its value in the workbook.
    cropped = [r for r in queue if r["crop"] and (out / r["crop"]).is_file()]
    assert len(load_workbook(out / XLSX_NAME).active._images) == len(cropped)
    first, *rest = queue
    edits: dict[str, dict[str, Any]] = {first["review_id"]: {"decision": "correct",
                                                              "corrected_value": first["value"].rstrip("。.") + "!"}}
    edits.update({r["review_id"]: {"decision": "accept"} for r in rest})
    edit_xlsx(out / XLSX_NAME, tmp_path / "r.xlsx", edits)
    assert main(["review", "apply", str(tmp_path / "r.xlsx"), "--out", str(out)]) == EXIT_OK
    assert read_csv(out / "review_queue.csv") == []
    records = [json.loads(line) for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(r["status"] == "clean" for r in records)
    assert main(["run", str(SCAN), "--out", str(out), "--no-progress", "--force"]) == EXIT_OK
    assert read_csv(out / "review_queue.csv") == []
    again = [json.loads(line) for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert again == records
