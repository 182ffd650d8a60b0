"""The foundation's acceptance: the seed dump through ``formrescue run`` (the Prefect flow), scored by
../shared/tools/evaluate.py, together with bad inputs in the same run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.cli import EXIT_FAILED_DOCS, EXIT_OK, main
from pipeline.export import read_csv
from tests.conftest import SEED, SEED_TRUTH, evaluate, require_shared


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def seed_run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    require_shared()
    out = tmp_path_factory.mktemp("seed-out")
    return main(["run", str(SEED), "--out", str(out), "--no-progress"]), out


def test_seed_scores_perfectly_with_small_review_load(seed_run: tuple[int, Path]) -> None:
    code, out = seed_run
    assert code == EXIT_OK
    exit_code, figures = evaluate(out, SEED_TRUTH, min_accuracy=1.0, max_silent=0)
    assert exit_code == 0, figures
    assert figures["accuracy"] == 1.0
    assert figures["silent_errors"] == 0.0
    assert figures["review_load"] <= 0.10
    assert figures["row_recall"] == 1.0


def test_seed_outputs_follow_the_contract(seed_run: tuple[int, Path]) -> None:
    _, out = seed_run
    records = _records(out)
    assert [r["project_name"] for r in records] == ["G60科创走廊建设", "宣传与推广"]
    first = records[0]
    assert first["funds"]["total"]["initial_budget"] == "10580000.00"  # printed 10,580,000.00
    assert first["year"] == 2022
    assert first["status"] == "needs_review"
    joined = [i["name"] for i in first["indicators"] if i["name"].startswith("推动关键核心技术")]
    assert joined == ["推动关键核心技术联合攻关，推进产业联盟成员产业链上下游合作"]
    row = first["indicators"][0]
    assert (row["target_op"], row["target_value"], row["target_unit"]) == ("=", "100", "%")
    assert row["provenance"]["page"] == 1
    for name in ("projects.csv", "indicators.csv", "review_queue.csv"):
        assert (out / name).read_bytes().startswith(b"\xef\xbb\xbf"), f"{name} has no BOM"
    # '=100%' is text in Excel: the raw CSV escapes it, our reader gives the original back.
    raw = (out / "indicators.csv").read_text(encoding="utf-8-sig")
    assert ",'=100%," in raw and ",=100%," not in raw
    assert read_csv(out / "indicators.csv")[0]["target"] == "=100%"
    queue = read_csv(out / "review_queue.csv")
    assert queue and all(item["reason"] and item["field"].startswith("forms[") for item in queue)
    polluted = [q for q in queue if q["reason"] == "cell_polluted"]
    assert [q["field"] for q in polluted] == ["forms[1].indicators[7].actual"]


def test_rerun_skips_finished_documents(seed_run: tuple[int, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, out = seed_run
    before = (out / "forms.jsonl").read_text(encoding="utf-8")
    assert main(["run", str(SEED), "--out", str(out), "--no-progress"]) == EXIT_OK
    assert "unchanged 1" in capsys.readouterr().out
    assert (out / "forms.jsonl").read_text(encoding="utf-8") == before


def test_bad_inputs_fail_clearly_and_the_batch_goes_on(prefect_server: None, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    require_shared()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SEED, inbox / "good.txt")
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "garbage.txt").write_bytes(bytes(range(256)) * 40)
    letter = "关于召开年度工作会议的通知\n各单位：\n定于下周一召开年度工作会议，请准时参加。\n"
    (inbox / "letter.txt").write_text(letter, encoding="utf-8")
    seed_text = SEED.read_text(encoding="utf-8")
    (inbox / "no-indicators.txt").write_text(seed_text.split("一级指标")[0], encoding="utf-8")
    missing = tmp_path / "does-not-exist.txt"
    out = tmp_path / "out"

    code = main(["run", str(inbox), str(missing), "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == EXIT_FAILED_DOCS

    from pipeline.store import StateStore

    store = StateStore.for_output(out)
    by_source = {Path(d.source).name: d for d in store.documents()}
    expected_failures = {
        "empty.txt": "is empty (0 bytes)",
        "garbage.txt": "binary",
        "letter.txt": "is not a 绩效自评表",
        "does-not-exist.txt": "no such file or folder",
    }
    for name, words in expected_failures.items():
        row = by_source[name]
        assert row.status.value == "failed", name
        assert name in (row.error or "") and words in (row.error or ""), row.error
        assert name in printed  # the summary names the file and the problem
    partial = by_source["no-indicators.txt"]
    assert partial.status.value == "needs_review"
    records = _records(out)
    partial_form = next(r for r in records if r["source"].endswith("no-indicators.txt"))
    assert any(i["code"] == "missing_section" and i["field"] == "indicators" for i in partial_form["issues"])
    assert partial_form["project_name"] == "G60科创走廊建设"
    # The good document in the same run is processed and exported exactly.
    good = [r for r in records if r["source"].endswith("good.txt")]
    assert [r["project_name"] for r in good] == ["G60科创走廊建设", "宣传与推广"]
    queue = read_csv(out / "review_queue.csv")
    failed_items = [q for q in queue if q["field"] == "forms"]
    assert {Path(q["source"]).name for q in failed_items} >= set(expected_failures)
    # forms.jsonl and projects.csv show each failed document too: one line, status failed, no fields, the reason.
    failed_lines = {Path(r["source"]).name: r for r in records if r["status"] == "failed"}
    assert set(failed_lines) == set(expected_failures)
    for name, words in expected_failures.items():
        line = failed_lines[name]
        assert line["project_name"] is None and line["indicators"] == []
        assert any(words in i["message"] for i in line["issues"]), line["issues"]
    projects = read_csv(out / "projects.csv")
    assert {Path(p["source"]).name for p in projects if p["status"] == "failed"} == set(expected_failures)
