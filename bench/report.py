"""Tables and plots of bench/REPORT.md from the saved results of a benchmark run.

Generated tables sit between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers; the prose around
them is written by hand and kept as it is when the tables are redrawn.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.datasets import NOISE_ORDER, SETS

REFERENCE = "paddleocr-fullpage"
SHIPPED = "formrescue"
HEADLINE_SETS = ("shared-noisy", "gen-noisy")


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    spec = align or "l" + "r" * (len(head) - 1)
    sep = ["---:" if a == "r" else "---" for a in spec]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- figures


def per_page_samples(record: dict[str, Any]) -> list[float]:
    """Wall seconds of each page; document-level time (render, forms, crops) spread evenly over its pages."""
    n = max(1, int(record.get("n_pages") or 0))
    pages = record.get("pages") or []
    if record["contender"] == "img2table":
        walls = [float(p["wall"]) for p in pages]
    else:
        walls = [float(p["ocr"]) + float(p["other"]) for p in pages]
    if len(walls) != n:
        return [float(record["wall"]) / n] * n
    rest = max(0.0, float(record["wall"]) - sum(walls)) / n
    return [w + rest for w in walls]


def spread(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    q = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {"median": statistics.median(ordered), "p25": q[0], "p75": q[2], "min": ordered[0], "max": ordered[-1]}


def speed(data: dict[str, Any], sets: Sequence[str], docs: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per contender over ``sets`` (and only documents every contender finished, so pages are the same)."""
    records = [r for r in data["docs"] if r["set"] in sets]
    done: dict[tuple[str, str], set[str]] = {}
    in_set: dict[str, set[str]] = {}
    for r in records:
        done.setdefault((r["set"], r["doc"]), set()).add(r["contender"])
        in_set.setdefault(r["set"], set()).add(r["contender"])
    # the same pages for everyone: documents read by every contender that ran on their set
    common = {key for key, who in done.items() if in_set[key[0]] <= who}
    out: dict[str, dict[str, Any]] = {}
    for name in data["contenders"]:
        mine = [r for r in records if r["contender"] == name and (r["set"], r["doc"]) in common]
        if not mine:
            continue
        pages = sum(int(r.get("n_pages") or 0) for r in mine)
        wall = sum(float(r["wall"]) for r in mine)
        cpu = sum(float(r["cpu"]) for r in mine)
        onnx = sum(float(r.get("onnx") or 0.0) for r in mine)
        timings: dict[str, float] = {}
        for r in mine:
            for key, value in (r.get("timings") or {}).items():
                timings[key] = timings.get(key, 0.0) + float(value)
        ocr_cpu = sum(float(p.get("ocr_cpu", 0.0)) for r in mine for p in r.get("pages") or [])
        out[name] = {
            "docs": len(mine), "pages": pages, "wall": wall, "cpu": cpu, "onnx": onnx, "timings": timings,
            "wall_per_page": wall / max(1, pages), "cpu_per_page": cpu / max(1, pages),
            "wall_page": spread([s for r in mine for s in per_page_samples(r)]),
            "onnx_share": onnx / wall if wall else None,
            "ocr_cpu_share": (ocr_cpu / cpu if cpu else None) if name != "img2table" else None,
            "peak_rss_mb": max(float(r.get("peak_rss_mb") or 0.0) for r in mine),
        }
    ref = out.get(REFERENCE)
    for figures in out.values():
        figures["x_ref_wall"] = figures["wall"] / ref["wall"] if ref else None
        figures["x_ref_cpu"] = figures["cpu"] / ref["cpu"] if ref else None
    return out


def accuracy(data: dict[str, Any], set_name: str, contender: str) -> dict[str, Any]:
    scores = data.get("scores", {}).get(set_name, {}).get(contender, {})
    return {**(scores.get("evaluate") or {}), "rows": scores.get("rows") or {}}


# ------------------------------------------------------------------------------------------- tables


def headline_table(data: dict[str, Any]) -> str:
    rows = []
    for set_name in HEADLINE_SETS:
        if set_name not in data.get("scores", {}):
            continue
        figures = speed(data, [set_name])
        for name, f in figures.items():
            acc = accuracy(data, set_name, name)
            rows_score = acc.get("rows", {})
            w = f["wall_page"]
            rows.append([
                set_name, f"`{name}`", str(f["pages"]), f"{_num(w.get('median'))} ({_num(w.get('p25'))}–"
                f"{_num(w.get('p75'))})", _num(f["cpu_per_page"]), _num(f["x_ref_wall"]), _num(f["x_ref_cpu"]),
                _pct(acc.get("accuracy")), _pct(acc.get("silent_errors")),
                f"{rows_score.get('exact', 0)}/{rows_score.get('truth_rows', 0)}"])
    return _table(["set", "contender", "pages", "wall s/page median (IQR)", "CPU s/page", "× PaddleOCR wall",
                   "× PaddleOCR CPU", "field accuracy", "silent errors", "indicator rows exact"], rows,
                  "llrrrrrrrr")


def accuracy_table(data: dict[str, Any]) -> str:
    rows = []
    for set_name in data.get("sets", []):
        for name in data["contenders"]:
            acc = accuracy(data, set_name, name)
            r = acc.get("rows", {})
            if not acc.get("fields") and not r:
                continue
            rows.append([set_name, f"`{name}`", str(acc.get("fields", "–")), _pct(acc.get("accuracy")),
                         _pct(acc.get("silent_errors"), 2), _pct(acc.get("review_load")),
                         _pct(acc.get("row_recall")), f"{r.get('exact', 0)}/{r.get('truth_rows', 0)}",
                         _pct(r.get("field_accuracy")), str(r.get("extra", "–"))])
    return _table(["set", "contender", "fields", "accuracy", "silent errors", "review load", "row recall",
                   "rows exact", "indicator cells right", "extra rows"], rows, "llrrrrrrrr")


def speed_table(data: dict[str, Any]) -> str:
    figures = speed(data, data.get("sets", []))
    startup = data.get("startup", {})
    rows = []
    for name, f in figures.items():
        w = f["wall_page"]
        s = startup.get(name, {})
        t = f["timings"]
        other = None if f["onnx_share"] is None or name == "img2table" else 1.0 - f["onnx_share"]
        rows.append([
            f"`{name}`", str(f["pages"]), _num(w.get("median")), f"{_num(w.get('p25'))}–{_num(w.get('p75'))}",
            f"{_num(w.get('min'))}–{_num(w.get('max'))}", _num(f["cpu_per_page"]), _pct(f["onnx_share"], 0),
            _pct(other, 1), _pct(f["ocr_cpu_share"], 0),
            _num(t.get("render", 0.0) / max(1, f["pages"])), _num(t.get("forms", 0.0) / max(1, f["pages"])),
            _num(t.get("crops", 0.0) / max(1, f["pages"])), _num(s.get("spawn_to_ready_s")), f"{f['peak_rss_mb']:.0f}"])
    return _table(["contender", "pages", "wall s/page median", "IQR", "min–max", "CPU s/page", "OCR inference",
                   "everything else", "OCR share of CPU", "render s/page", "forms s/page", "crops s/page",
                   "start-up s", "peak RSS MB"], rows)


def text_table(text: dict[str, Any] | None) -> str:
    if not text:
        return "_not run_"
    rows = []
    for label, parts in text.items():
        lib, cli = parts.get("library", {}), parts.get("cli", {})
        if "error" in lib:
            rows.append([label, "error", "", "", "", "", ""])
            continue
        cpu_rate = lib["forms"] / lib["cpu"] if lib.get("cpu") else None
        stages = lib.get("stages", {})
        split = ", ".join(f"{k} {v / max(1, lib['forms']) * 1000:.0f}" for k, v in stages.items() if k != "total")
        rows.append([label, f"{lib['files']} files, {lib['forms']} forms", _num(lib["forms_per_s"], 1),
                     _num(cpu_rate, 1), split, _num(cli.get("forms_per_s"), 2),
                     _num(cli.get("forms_per_s_documents"), 2)])
    return _table(["input", "set", "library forms/s (wall)", "library forms per CPU-second", "ms per form by stage",
                   "CLI forms/s (whole command)", "CLI forms/s (documents only)"], rows, "llrrlrr")


def workers_table(workers: dict[str, Any] | None) -> str:
    if not workers:
        return "_not run_"
    rows = []
    for key in ("pool-1", "pool-2", "split-2x1"):
        w = workers.get(key)
        if not w or "error" in w:
            rows.append([key, "error", "", "", "", ""])
            continue
        what = {"pool-1": "WorkerPool, 1 process (2 ONNX threads)", "pool-2": "WorkerPool, 2 processes (2 ONNX "
                "threads each)", "split-2x1": "2 plain processes, 1 ONNX thread each"}[key]
        rows.append([what, str(w["pages"]), _num(w["wall"], 1), _num(w["cpu"], 1), _num(w["pages_per_min"], 1),
                     _num(60 * w["pages"] / w["cpu"], 1) if w.get("cpu") else "–"])
    base = workers.get("pool-1", {}).get("pages_per_min")
    two = workers.get("pool-2", {}).get("pages_per_min")
    note = f"\n\n2 workers / 1 worker throughput: {two / base:.2f}×" if base and two else ""
    return _table(["configuration", "pages", "wall s", "CPU s", "pages/min (wall)", "pages per CPU-minute"],
                  rows) + note


def memory_table(memory: dict[str, Any] | None) -> str:
    if not memory:
        return "_not run_"
    if "pages" not in memory:  # the measuring subprocess failed
        return f"error: {str(memory.get('error'))[-400:]}"
    per_page = memory.get("per_page") or []
    first = [r for _, r, _ in per_page[:20]]
    last = [r for _, r, _ in per_page[-20:]]
    rows = [[Path(memory["pdf"]).name, str(memory["pages"]), str(memory["forms"]), memory["status"],
             f"{memory['peak_rss_mb']:.0f}", f"{statistics.fmean(first):.0f}" if first else "–",
             f"{statistics.fmean(last):.0f}" if last else "–", _num(memory["wall"], 0), _num(memory["cpu"], 0)]]
    return _table(["PDF", "pages", "forms", "status", "peak RSS MB", "RSS pages 1–20 MB", "RSS last 20 pages MB",
                   "wall s", "CPU s"], rows, "lrrlrrrrr")


def targets_table(data: dict[str, Any] | None, text: dict[str, Any] | None,
                  memory: dict[str, Any] | None) -> str:
    rows = []
    if data:
        for set_name in HEADLINE_SETS:
            f = speed(data, [set_name])
            if SHIPPED not in f or REFERENCE not in f:
                continue
            mine = f[SHIPPED]
            acc_mine = accuracy(data, set_name, SHIPPED).get("accuracy")
            acc_ref = accuracy(data, set_name, REFERENCE).get("accuracy")
            ok_wall = mine["x_ref_wall"] is not None and mine["x_ref_wall"] <= 1 / 3
            ok_cpu = mine["x_ref_cpu"] is not None and mine["x_ref_cpu"] <= 1 / 3
            ok_acc = acc_mine is not None and acc_ref is not None and acc_mine >= acc_ref
            rows.append([f"{set_name}: s/page ≤ ⅓ of PaddleOCR full-page, accuracy not lower",
                         f"wall ×{_num(mine['x_ref_wall'])}, CPU ×{_num(mine['x_ref_cpu'])}; accuracy "
                         f"{_pct(acc_mine)} vs {_pct(acc_ref)}", "met" if ok_wall and ok_cpu and ok_acc else
                         "NOT met"])
            wall_other = None if mine["onnx_share"] is None else 1 - mine["onnx_share"]
            cpu_other = None if mine["ocr_cpu_share"] is None else 1 - mine["ocr_cpu_share"]
            ok = wall_other is not None and cpu_other is not None and max(wall_other, cpu_other) <= 0.10
            rows.append([f"{set_name}: everything but OCR inference ≤ 10 % (`{SHIPPED}`)",
                         f"{_pct(wall_other)} of wall time outside ONNX Runtime; {_pct(cpu_other)} of CPU time "
                         "outside the OCR engine", "met" if ok else "NOT met"])
    if memory and "pages" in memory:
        rows.append([f"peak RSS < 1.5 GB on a {memory['pages']}-page PDF", f"{memory['peak_rss_mb']:.0f} MB",
                     "met" if memory["peak_rss_mb"] < 1536 else "NOT met"])
    if text:
        for label, parts in text.items():
            lib = parts.get("library", {})
            if "error" in lib:
                continue
            cpu_rate = lib["forms"] / lib["cpu"] if lib.get("cpu") else 0.0
            rows.append([f"{label}: ≥ 20 forms/s", f"{lib['forms_per_s']:.1f} forms/s wall on this loaded machine, "
                         f"{cpu_rate:.1f} per CPU-second (library)", "met" if lib["forms_per_s"] >= 20 else
                         ("met per CPU-second only" if cpu_rate >= 20 else "NOT met")])
    return _table(["target", "measured", "verdict"], rows, "lll")


# ------------------------------------------------------------------------------------------- plots


def plot_accuracy(data: dict[str, Any], path: Path, full: dict[str, Any] | None = None) -> None:
    """Accuracy against noise for each contender of the head-to-head (``data``) and, dashed, for the
    contenders of a run over every document of each generated set (``full``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    x = {n: i for i, n in enumerate(NOISE_ORDER)}
    markers = "osD^vP*X"
    panels: list[tuple[Any, str, Callable[[dict[str, Any]], float | None]]] = [
        (axes[0], "field accuracy (evaluate.py)", lambda a: a.get("accuracy")),
        (axes[1], "indicator rows exact (name, target, actual, weight, score)",
         lambda a: a.get("rows", {}).get("exact_rate")),
    ]
    series = [(data, name, "", "-") for name in data["contenders"]]
    if full:
        docs = full.get("docs_per_set") or "all"
        series += [(full, name, f", {docs} docs per set", "--") for name in full["contenders"]]
    for ax, title, value in panels:
        for k, (run, name, suffix, style) in enumerate(series):
            gen = [(x[SETS[s].noise], value(accuracy(run, s, name))) for s in run.get("sets", [])
                   if SETS[s].origin == "generated"]
            gen = [(a, b) for a, b in sorted(gen) if b is not None]
            if gen:
                ax.plot([a for a, _ in gen], [100 * b for _, b in gen], marker=markers[k % len(markers)],
                                  linestyle=style, color=f"C{k}", label=f"{name} (generated{suffix})")
            if run is not data:
                continue  # the shared scans are the same two documents in both runs
            shared = [(x[SETS[s].noise] + 0.06, value(accuracy(data, s, name))) for s in data.get("sets", [])
                      if SETS[s].origin == "shared"]
            shared = [(a, b) for a, b in shared if b is not None]
            if shared:
                ax.scatter([a for a, _ in shared], [100 * b for _, b in shared], marker=markers[k % len(markers)],
                           facecolors="none", edgecolors=f"C{k}", s=70,
                           label=f"{name} (shared scans)")
        ax.set_xticks(range(len(NOISE_ORDER)), list(NOISE_ORDER))
        ax.set_xlabel("noise level")
        ax.set_ylabel("%")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_speed(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = speed(data, data.get("sets", []))
    names = list(figures)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    walls = [figures[n]["wall_per_page"] for n in names]
    onnx = [figures[n]["onnx"] / max(1, figures[n]["pages"]) for n in names]
    other = [w - o for w, o in zip(walls, onnx, strict=True)]
    ax.barh(names, onnx, label="OCR inference (ONNX Runtime / Tesseract)")
    ax.barh(names, other, left=onnx, label="everything else")
    ax.set_xlabel("wall seconds per page (same pages, interleaved, loaded 2-core machine)")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------- report


SKELETON = """# Benchmark

<!-- bench:meta -->
<!-- /bench:meta -->

## Headline
<!-- bench:headline -->
<!-- /bench:headline -->

## Targets
<!-- bench:targets -->
<!-- /bench:targets -->

## Accuracy per set
<!-- bench:accuracy -->
<!-- /bench:accuracy -->

## Speed
<!-- bench:speed -->
<!-- /bench:speed -->

## Text dumps and text-layer PDFs
<!-- bench:text -->
<!-- /bench:text -->

## Worker processes
<!-- bench:workers -->
<!-- /bench:workers -->

## Memory
<!-- bench:memory -->
<!-- /bench:memory -->
"""


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
    if not pattern.search(text):
        return text + f"\n<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->\n"
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def meta_block(data: dict[str, Any] | None, out_dir: Path) -> str:
    if not data:
        return f"_no accuracy run in {out_dir}_"
    m = data.get("machine", {})
    return (f"Run `{out_dir.name}`: {data.get('started')} – {data.get('finished', 'unfinished')}; "
            f"{m.get('cpus')} CPUs, Python {m.get('python')}, ONNX Runtime {m.get('onnxruntime')}; load average at "
            f"start {', '.join(f'{v:.1f}' for v in m.get('load_at_start', []))}; documents per generated set: "
            f"{data.get('docs_per_set') or 'all'}.")


def write_report(out_dir: Path, report: Path, plot: Path, full_dir: Path | None = None) -> None:
    """Tables and plots from the run in ``out_dir``; ``full_dir``, if given and run, holds the accuracy
    step over every document of each set (block ``full``)."""
    data = _load(out_dir / "accuracy.json")
    full = _load(full_dir / "accuracy.json") if full_dir else None
    text = _load(out_dir / "text.json")
    workers = _load(out_dir / "workers.json")
    memory = _load(out_dir / "memory.json")
    content = report.read_text(encoding="utf-8") if report.exists() else SKELETON
    blocks = {"meta": meta_block(data, out_dir), "text": text_table(text), "workers": workers_table(workers),
              "memory": memory_table(memory), "targets": targets_table(data, text, memory)}
    if data:
        blocks.update(headline=headline_table(data), accuracy=accuracy_table(data), speed=speed_table(data))
        plot_accuracy(data, plot, full)
        plot_speed(data, plot.with_name("speed_per_page.png"))
    if full:
        blocks["full"] = meta_block(full, full_dir or out_dir) + "\n\n" + accuracy_table(full)
    for name, body in blocks.items():
        content = replace_block(content, name, body)
    report.write_text(content, encoding="utf-8")
