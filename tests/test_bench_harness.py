"""The benchmark harness works on tiny inputs (no timing is asserted: speed is the benchmark's report's job)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench import report, scoring
from bench.procs import ContenderProcess
from bench.run import run_evaluate

ROOT = Path(__file__).resolve().parents[1]
SEED_DUMP = ROOT / "samples" / "text" / "000_9ccbaafc82c3a09f.txt"
SEED_TRUTH = ROOT / "samples" / "text" / "000_9ccbaafc82c3a09f.expected.json"
needs_evaluate = pytest.mark.skipif(not scoring.EVALUATE.exists(), reason="../shared/tools/evaluate.py not present")


def test_img2table_adapter_reads_indicator_rows() -> None:
    header = ["一级指标", "二级指标", "三 级 指标", "三 级 指标", "年度指标值", "实际完成值", "分值", "得 分", "偏差"]
    table = [
        ["项目名称", "X", "X", "X", "X", "X", "X", "X", "X"],
        header,
        ["产出指标", "数量指标", "培训 人次", "培训 人次", "≥100人次", "120 None 人次", "10", "10", ""],
        ["总分", "总分", "总分", "总分", "总分", "总分", "100", "98", ""],
    ]
    continued = [["产出指标", "质量指标", "合格率", "合格率", "=100%", "100%", "5", "4", "原因"]]
    other_shape = [["a", "b"], ["c", "d"]]
    rows = scoring.img2table_rows([table, continued, other_shape])
    assert rows == [
        {"name": "培训 人次", "target": "≥100人次", "actual": "120 人次", "weight": "10", "score": "10"},
        {"name": "合格率", "target": "=100%", "actual": "100%", "weight": "5", "score": "4"},
    ]


def test_header_prefers_exact_third_level_label() -> None:
    columns = scoring.header_columns(["一级指标", "二级指标", "三级指标", "指标值", "实际值", "分值", "得分"])
    assert columns == {"name": 2, "target": 3, "actual": 4, "weight": 5, "score": 6}
    assert scoring.header_columns(["项目名称", "预算"]) is None


@needs_evaluate
def test_row_scores_use_evaluate_normalisation() -> None:
    truth = [{"name": "培训人次", "target": "≥100人次", "actual": "120人次", "weight": 10, "score": 10},
             {"name": "合格率", "target": "=100%", "actual": "100%", "weight": 5, "score": 4}]
    got = [{"name": "培训 人次", "target": ">=100人次", "actual": "120人次", "weight": "10", "score": "10.0"},
           {"name": "合格率", "target": "=100%", "actual": "99%", "weight": "5", "score": "4"}]
    score = scoring.score_rows(truth, got)
    assert (score.truth_rows, score.matched, score.exact) == (2, 2, 1)
    assert score.fields_right == 9


@needs_evaluate
def test_worker_reads_a_text_dump_and_exports_for_evaluate(tmp_path: Path) -> None:
    source = tmp_path / "000_9ccbaafc82c3a09f.txt"
    shutil.copyfile(SEED_DUMP, source)
    out = tmp_path / "out"
    proc = ContenderProcess("formrescue", [sys.executable, "-m", "bench.worker", "formrescue"],
                            tmp_path / "worker.log", nice=0)
    try:
        ready = proc.start()
        assert ready["contender"] == "formrescue"
        answer = proc.request({"cmd": "doc", "path": str(source), "source": str(source), "set": "seed",
                               "out": str(out)})
        assert answer["forms"] == 2 and answer["status"] in ("clean", "needs_review")
        assert {"wall", "cpu", "onnx", "timings", "peak_rss_mb"} <= set(answer)
        exported = proc.request({"cmd": "export", "out": str(out)})
        assert exported["documents"] == 1
    finally:
        proc.stop()
    figures = run_evaluate(out, [SEED_TRUTH])
    assert figures["fields"] > 0 and 0.0 <= figures["accuracy"] <= 1.0
    rows = scoring.forms_indicators(out / "forms.jsonl")[source.name]
    assert scoring.score_rows(scoring.truth_indicators(SEED_TRUTH), rows).truth_rows > 0


def test_report_fills_marked_blocks(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    record = {"set": "gen-noisy", "doc": "noisy-1-000.pdf", "n_pages": 2, "wall": 4.0, "cpu": 3.0, "onnx": 3.5,
              "timings": {"render": 0.1, "forms": 0.1, "crops": 0.1}, "peak_rss_mb": 500.0,
              "pages": [{"page": 1, "ocr": 1.8, "other": 0.1, "ocr_cpu": 1.4, "other_cpu": 0.1},
                        {"page": 2, "ocr": 1.8, "other": 0.1, "ocr_cpu": 1.4, "other_cpu": 0.1}]}
    scores = {"evaluate": {"fields": 10, "accuracy": 0.9, "silent_errors": 0.0, "review_load": 0.1,
                           "row_recall": 1.0}, "rows": scoring.RowScore(4, 4, 3, 20, 18, 0).to_dict()}
    data = {"contenders": ["formrescue", "paddleocr-fullpage"], "sets": ["gen-noisy"], "startup": {},
            "docs": [{**record, "contender": "formrescue"},
                     {**record, "contender": "paddleocr-fullpage", "wall": 16.0, "cpu": 12.0}],
            "scores": {"gen-noisy": {"formrescue": scores, "paddleocr-fullpage": scores}},
            "machine": {"cpus": 2, "load_at_start": [1.0, 1.0, 1.0]}, "started": "now", "docs_per_set": 1}
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    (out_dir / "accuracy.json").write_text(json.dumps(data), encoding="utf-8")
    target = tmp_path / "REPORT.md"
    target.write_text("# Report\n\nHand-written text.\n\n<!-- bench:headline -->\nold\n<!-- /bench:headline -->\n",
                      encoding="utf-8")
    report.write_report(out_dir, target, tmp_path / "plot.png")
    text = target.read_text(encoding="utf-8")
    assert "Hand-written text." in text and "old" not in text
    assert "| gen-noisy | `formrescue` | 2 |" in text
    assert "0.25" in text  # 4 s against 16 s of the reference, on the same pages
    assert (tmp_path / "plot.png").stat().st_size > 0 and (tmp_path / "speed_per_page.png").exists()


def test_bench_command_is_registered() -> None:
    from flows.cli import build_parser

    args = build_parser().parse_args(["bench", "--steps", "report", "--tag", "x"])
    assert args.command == "bench" and args.steps == "report" and args.tag == "x"
