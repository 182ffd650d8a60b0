"""The benchmark, end to end: ``formrescue bench`` or ``python bench/run.py`` (see bench/REPORT.md).

Steps (``--steps``, default all):

* ``accuracy``  every contender on the same documents of every set, interleaved document by document
                (one contender works at a time), scored with evaluate.py and the shared indicator-row scorer;
                seconds per page (wall and CPU), OCR inference share, start-up and peak RSS come from the
                same run;
* ``full``      the accuracy step for ``--full-contenders`` (default formrescue) over every document of every
                set, into ``bench/results/<full-tag>/`` (the head-to-head reads ``--docs`` per generated set:
                PaddleOCR full-page costs ~15-30 s a page here);
* ``text``      forms per second for text dumps and text-layer PDFs: library calls and the CLI;
* ``workers``   throughput with 1 and 2 worker processes (pipeline.workers.WorkerPool; and two plain
                processes with one ONNX thread each);
* ``memory``    peak RSS reading a 200-page PDF made by concatenating scans;
* ``report``    tables into bench/REPORT.md (between ``<!-- bench:NAME -->`` markers) and the plot.

Results go to ``bench/results/<tag>/`` (git-ignored): raw JSON per step, and each contender's outputs
(forms.jsonl, review_queue.csv) per set. ``--report-only`` redraws the report from saved results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datasets import SETS, ScanSet, ensure  # noqa: E402
from bench.procs import ContenderProcess  # noqa: E402
from bench.scoring import (  # noqa: E402
    EVALUATE,
    RowScore,
    forms_indicators,
    img2table_rows,
    score_rows,
    truth_indicators,
)

RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "bench" / "REPORT.md"
PLOT = ROOT / "bench" / "accuracy_vs_noise.png"
PADDLE_PYTHON = Path(os.environ.get("FORMRESCUE_BENCH_PADDLE_PYTHON", "/work/venv-paddle/bin/python"))
IMG2TABLE_PYTHON = Path(os.environ.get("FORMRESCUE_BENCH_IMG2TABLE_PYTHON", "/work/venv-img2table/bin/python"))
DEFAULT_CONTENDERS = ("formrescue", "formrescue-paddleocr", "paddleocr-fullpage", "img2table")
STEPS = ("accuracy", "full", "text", "workers", "memory", "report")


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    command: list[str]
    kind: str  # "formrescue" (forms.jsonl + evaluate.py) | "img2table" (tables -> rows)


def contender_spec(name: str) -> Spec:
    from bench.worker import CONTENDERS

    if name == "img2table":
        return Spec(name, [str(IMG2TABLE_PYTHON), str(ROOT / "bench" / "img2table_worker.py")], "img2table")
    if name not in CONTENDERS:
        raise SystemExit(f"unknown contender {name!r}; choose from img2table, {', '.join(CONTENDERS)}")
    contender = CONTENDERS[name]
    paddle = contender.engine.startswith("paddleocr") or contender.paddle_venv
    python = str(PADDLE_PYTHON) if paddle else sys.executable
    return Spec(name, [python, "-m", "bench.worker", name], "formrescue")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def save(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


# -------------------------------------------------------------------------------------------- accuracy


def run_evaluate(out: Path, truths: Sequence[Path]) -> dict[str, Any]:
    """evaluate.py's figures for one contender's output folder."""
    proc = subprocess.run([sys.executable, str(EVALUATE), str(out), *map(str, truths)], capture_output=True,
                          text=True, check=False)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    m = re.match(r"fields (\d+) accuracy ([\d.]+) silent_errors ([\d.]+) review_load ([\d.]+) row_recall ([\d.]+) "
                 r"rows_exact (\d+)/(\d+) extra_rows (\d+)", line)
    if not m:
        return {"error": (proc.stderr or line)[-500:]}
    return {"fields": int(m[1]), "accuracy": float(m[2]), "silent_errors": float(m[3]), "review_load": float(m[4]),
            "row_recall": float(m[5]), "rows_exact": int(m[6]), "truth_rows": int(m[7]), "extra_rows": int(m[8])}


def step_accuracy(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    specs = [contender_spec(n) for n in names]
    sets = [SETS[s.strip()] for s in args.sets.split(",") if s.strip()]
    for scan_set in sets:
        ensure(scan_set, generate=not args.no_generate)
    raw_path = out_dir / "accuracy.json"
    data: dict[str, Any] = {"contenders": [], "sets": [], "docs_per_set": args.docs, "startup": {}, "docs": [],
                            "scores": {}}
    if raw_path.exists() and not args.fresh:  # resume: documents already done are not done again
        data = json.loads(raw_path.read_text(encoding="utf-8"))
        log(f"resuming {raw_path}: {len(data['docs'])} documents done")
    data["contenders"] += [n for n in names if n not in data["contenders"]]
    data["sets"] += [s.name for s in sets if s.name not in data["sets"]]
    data["started"] = data.get("started") or time.strftime("%Y-%m-%d %H:%M:%S")
    data["machine"] = data.get("machine") or machine_info()
    done = {(r["set"], r["doc"], r["contender"]) for r in data["docs"]}
    procs: dict[str, ContenderProcess] = {}
    try:
        for spec in specs:  # one at a time: start-up is timed without the others competing
            proc = ContenderProcess(spec.name, spec.command, out_dir / "logs" / f"{spec.name}.log", nice=args.nice)
            log(f"starting {spec.name}")
            ready = proc.start()
            procs[spec.name] = proc
            data["startup"].setdefault(spec.name, {"spawn_to_ready_s": proc.startup_s, **ready})
        turn = 0
        for scan_set in sets:
            docs = scan_set.documents(args.docs if scan_set.origin == "generated" else 0)
            fresh = False
            for doc in docs:
                order = names[turn % len(names):] + names[:turn % len(names)]  # rotate who goes first
                turn += 1
                for name in order:
                    if (scan_set.name, doc.name, name) in done:
                        continue
                    fresh = True
                    spec = specs[names.index(name)]
                    target = out_dir / name / scan_set.name
                    request = {"cmd": "doc", "path": str(doc), "source": str(doc), "set": scan_set.name,
                               "out": str(target), "dpi": 300}
                    answer = procs[name].request(request)
                    answer.pop("source", None)
                    if spec.kind == "img2table":
                        rows = img2table_rows(answer.pop("tables", []))
                        answer["rows"] = rows
                    data["docs"].append({"set": scan_set.name, "doc": doc.name, "contender": name, **answer})
                    log(f"{scan_set.name} {doc.name} {name}: {answer.get('n_pages')} pages, "
                        f"{answer.get('wall', 0):.1f}s wall, {answer.get('cpu', 0):.1f}s CPU")
                save(raw_path, data)
            if fresh or scan_set.name not in data["scores"]:
                for spec in specs:
                    if spec.kind == "formrescue":
                        procs[spec.name].request({"cmd": "export", "out": str(out_dir / spec.name / scan_set.name)})
                data["scores"][scan_set.name] = score_set(scan_set, data["contenders"], data["docs"], out_dir)
                save(raw_path, data)
    finally:
        for proc in procs.values():
            proc.stop()
    for name, proc in procs.items():
        data["startup"][name]["final_log"] = str(proc.log_path)
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(raw_path, data)
    return data


def score_set(scan_set: ScanSet, contenders: Sequence[str], records: Sequence[dict[str, Any]],
              out_dir: Path) -> dict[str, Any]:
    """Scores of every contender that read documents of this set, each on the documents it read."""
    scores: dict[str, Any] = {}
    for name in contenders:
        mine = {r["doc"]: r for r in records if r["contender"] == name and r["set"] == scan_set.name}
        if not mine:
            continue
        docs = [d for d in scan_set.documents() if d.name in mine]
        truths = [scan_set.truth(d) for d in docs]
        rows = RowScore()
        if contender_spec(name).kind == "formrescue":
            folder = out_dir / name / scan_set.name
            evaluation = run_evaluate(folder, truths)
            extracted = forms_indicators(folder / "forms.jsonl")
            for doc, truth in zip(docs, truths, strict=True):
                rows.add(score_rows(truth_indicators(truth), extracted.get(doc.name, [])))
        else:
            evaluation = {}
            for doc, truth in zip(docs, truths, strict=True):
                rows.add(score_rows(truth_indicators(truth), mine[doc.name].get("rows", [])))
        scores[name] = {"evaluate": evaluation, "rows": rows.to_dict(), "docs": len(docs)}
    return scores


def machine_info() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform(), "load_at_start": os.getloadavg()}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    info["code"] = code_version()
    return info


def code_version() -> str:
    """HEAD and a digest of the library's source as it is (the reader may hold uncommitted changes)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        digest.update(path.read_bytes())
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "pipeline"], cwd=ROOT, capture_output=True, text=True,
                           check=False).stdout.strip()
    return f"{proc.stdout.strip() or '?'}{' + uncommitted pipeline changes' if dirty else ''}, pipeline/ sha256 " \
           f"{digest.hexdigest()[:12]}"


# -------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="formrescue bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of: {', '.join(STEPS)}")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help="formrescue contenders of bench/worker.py, and img2table")
    parser.add_argument("--docs", type=int, default=5,
                        help="documents per generated set in the head-to-head (0: all 30)")
    parser.add_argument("--tag", default="latest", help="results go to bench/results/TAG")
    parser.add_argument("--fresh", action="store_true", help="start the accuracy step over (default: resume)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the contender processes (0: none)")
    parser.add_argument("--no-generate", action="store_true", help="fail instead of generating missing sets")
    parser.add_argument("--memory-pages", type=int, default=200, help="pages of the memory test PDF")
    parser.add_argument("--text-copies", type=int, default=50, help="text dumps in the text-rate test")
    parser.add_argument("--workers-docs", type=int, default=6, help="documents of gen-noisy in the workers test")
    parser.add_argument("--full-tag", default="all30",
                        help="where the full step's results go; the report adds their table and plot lines")
    parser.add_argument("--full-contenders", default="formrescue", help="contenders of the full step")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--plot", type=Path, default=PLOT)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    out_dir = RESULTS / args.tag
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise SystemExit(f"unknown step(s): {', '.join(sorted(unknown))}; choose from {', '.join(STEPS)}")
    if "accuracy" in steps:
        step_accuracy(args, out_dir)
    if "full" in steps:
        full_dir = RESULTS / args.full_tag
        full_dir.mkdir(parents=True, exist_ok=True)
        step_accuracy(argparse.Namespace(**{**vars(args), "contenders": args.full_contenders, "docs": 0}), full_dir)
    if "text" in steps:
        from bench.speed import step_text

        save(out_dir / "text.json", step_text(args, out_dir))
    if "workers" in steps:
        from bench.speed import step_workers

        save(out_dir / "workers.json", step_workers(args, out_dir))
    if "memory" in steps:
        from bench.speed import step_memory

        save(out_dir / "memory.json", step_memory(args, out_dir))
    if "report" in steps:
        from bench.report import write_report

        write_report(out_dir, args.report, args.plot, RESULTS / args.full_tag)
        log(f"report: {args.report}, plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
