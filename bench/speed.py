"""Speed steps of the benchmark besides the contenders' run: text throughput, worker processes, memory.

Each heavy measurement runs in a fresh subprocess (``python -m bench.speed WHAT ...``) so start-up, warm
caches and peak memory are its own; the parent collects one ``RESULT`` JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datasets import SETS, ensure  # noqa: E402

SEED_DUMP = ROOT.parent / "shared" / "seed" / "000_9ccbaafc82c3a09f.txt"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _subprocess(args: Sequence[str], nice: int, timeout: float | None = None) -> dict[str, Any]:
    cmd = (["nice", "-n", str(nice)] if nice else []) + [sys.executable, "-m", "bench.speed", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
    result: dict[str, Any] = json.loads(line[7:])
    return result


def rss_now_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------ text rate


def text_inputs(out_dir: Path, copies: int) -> tuple[list[Path], list[Path]]:
    """``copies`` distinct text dumps (the seed dump plus k trailing newlines: other bytes, same forms) and the
    text-layer PDFs of the generated clean set."""
    folder = out_dir / "textdumps"
    folder.mkdir(parents=True, exist_ok=True)
    data = SEED_DUMP.read_bytes()
    dumps = []
    for k in range(copies):
        path = folder / f"seed-{k:03d}.txt"
        path.write_bytes(data + b"\n" * (k + 1))
        dumps.append(path)
    scan_set = SETS["gen-clean"]
    ensure(scan_set)
    pdfs = sorted(scan_set.folder.glob("*.textlayer.pdf"))
    return dumps, pdfs


def library_rate(files: Sequence[Path]) -> dict[str, Any]:
    """process_file over the files in this process (catalogue loaded and one file done first, untimed)."""
    from pipeline.config import Settings
    from pipeline.process import process_file, shared_catalogue

    settings = Settings.from_env(isolation="thread")
    t0 = time.perf_counter()
    shared_catalogue(settings.catalogue)
    process_file(files[0], str(files[0]), settings)
    warm = time.perf_counter() - t0
    stages: dict[str, float] = {}
    forms = pages = failed = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for path in files:
        result = process_file(path, str(path), settings)
        forms += len(result.forms)
        pages += result.n_pages
        failed += result.status.value == "failed"
        for key, value in result.timings.items():
            stages[key] = stages.get(key, 0.0) + value
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"files": len(files), "forms": forms, "pages": pages, "failed": failed, "wall": wall, "cpu": cpu,
            "forms_per_s": forms / wall if wall else 0.0, "warm_up_s": warm, "stages": stages,
            "peak_rss_mb": peak_rss_mb()}


def cli_rate(files: Sequence[Path], out: Path, nice: int) -> dict[str, Any]:
    """``formrescue run`` on a folder of the files (fresh output folder): wall time of the whole command, and
    the flow's own document time (the summary line's seconds)."""
    import shutil

    folder = out.with_name(out.name + "-inputs")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in files:
        os.symlink(path, folder / path.name)
    exe = Path(sys.executable).with_name("formrescue")
    cmd = (["nice", "-n", str(nice)] if nice else []) + [str(exe), "run", str(folder), "--out", str(out),
                                                         "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    m = re.search(r"· forms (\d+) · indicators (\d+) · review items (\d+) · ([\d.]+) s", proc.stdout)
    forms = int(m[1]) if m else 0
    flow_seconds = float(m[4]) if m else None
    return {"files": len(files), "forms": forms, "wall": wall, "exit": proc.returncode,
            "forms_per_s": forms / wall if wall else 0.0, "documents_seconds": flow_seconds,
            "forms_per_s_documents": forms / flow_seconds if flow_seconds else None,
            "stdout_tail": proc.stdout[-600:], "stderr_tail": proc.stderr[-600:]}


def step_text(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    dumps, pdfs = text_inputs(out_dir, args.text_copies)
    result: dict[str, Any] = {}
    for label, files in (("text dumps", dumps), ("text-layer PDFs", pdfs)):
        log(f"text rate: library, {label}")
        lib = _subprocess(["library", *map(str, files)], args.nice)
        log(f"text rate: CLI, {label}")
        cli = cli_rate(files, out_dir / "cli" / label.replace(" ", "-"), args.nice)
        result[label] = {"library": lib, "cli": cli}
    return result


# ------------------------------------------------------------------------------------------ workers


def pool_throughput(docs: Sequence[Path], size: int, out: Path) -> dict[str, Any]:
    """pipeline.workers.WorkerPool of ``size`` processes (engine loaded once per process): warmed on one
    one-page sample each, then the documents, ``size`` at a time, crops of flagged fields written to ``out``
    as ``formrescue run`` does."""
    import psutil

    from pipeline.config import Settings
    from pipeline.workers import Job, WorkerPool

    settings = Settings.from_env(isolation="process", workers=size)
    warm_doc = ROOT / "samples" / "scans" / "noisy-101-000.pdf"
    pool = WorkerPool(size, settings, warm=True)
    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(size) as executor:
            list(executor.map(lambda k: pool.run(Job(str(warm_doc), f"warm-{k}", settings, f"warm-{k}")),
                              range(size)))
        warm = time.perf_counter() - t0
        procs = [psutil.Process(pid) for pid in pool.pids()]
        cpu0 = sum(sum(p.cpu_times()[:2]) for p in procs)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(size) as executor:
            results = list(executor.map(lambda d: pool.run(Job(str(d), str(d), settings, d.name, out=str(out))),
                                        docs))
        wall = time.perf_counter() - t0
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs) - cpu0
        rss = [p.memory_info().rss / 2**20 for p in procs]
    finally:
        pool.close()
    pages = sum(r.n_pages for r in results)
    return {"size": size, "docs": len(docs), "pages": pages, "wall": wall, "cpu": cpu, "warm_s": warm,
            "pages_per_min": 60 * pages / wall if wall else 0.0, "failed": sum(r.status.value == "failed"
                                                                                 for r in results),
            "worker_rss_mb": rss}


def split_processes(docs: Sequence[Path], contender: str, n: int, nice: int, out_dir: Path) -> dict[str, Any]:
    """``n`` plain contender processes (bench.worker) on interleaved shares of the documents, at once."""
    from bench.procs import ContenderProcess

    procs = [ContenderProcess(f"{contender}-{k}", [sys.executable, "-m", "bench.worker", contender],
                              out_dir / "logs" / f"split-{contender}-{k}.log", nice=nice) for k in range(n)]
    for proc in procs:
        proc.start()
    shares = [list(docs[k::n]) for k in range(n)]

    def work(k: int) -> list[dict[str, Any]]:
        return [procs[k].request({"cmd": "doc", "path": str(d), "source": str(d), "set": "split",
                                  "out": str(out_dir / "split" / contender)}) for d in shares[k]]

    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as executor:
            answers = [a for part in executor.map(work, range(n)) for a in part]
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.stop()
    pages = sum(int(a.get("n_pages") or 0) for a in answers)
    return {"processes": n, "contender": contender, "docs": len(docs), "pages": pages, "wall": wall,
            "cpu": sum(float(a["cpu"]) for a in answers), "pages_per_min": 60 * pages / wall if wall else 0.0,
            "peak_rss_mb": max(float(a.get("peak_rss_mb") or 0) for a in answers)}


def step_workers(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    scan_set = SETS["gen-noisy"]
    ensure(scan_set)
    docs = scan_set.documents(args.workers_docs)
    result: dict[str, Any] = {"docs": [d.name for d in docs], "load_at_start": os.getloadavg()}
    for size in (1, 2):
        log(f"workers: WorkerPool size {size}")
        result[f"pool-{size}"] = _subprocess(["pool", str(size), str(out_dir / "pool" / str(size)),
                                              *map(str, docs)], args.nice)
    log("workers: 2 plain processes, 1 ONNX thread each")
    result["split-2x1"] = split_processes(docs, "formrescue-t1", 2, args.nice, out_dir)
    result["load_at_end"] = os.getloadavg()
    return result


# ------------------------------------------------------------------------------------------ memory


def build_big_pdf(target: Path, pages: int) -> Path:
    """``pages`` pages of the generated noisy scans, documents in turn (pypdfium2 import_pages)."""
    import pypdfium2 as pdfium

    if target.exists():
        with pdfium.PdfDocument(str(target)) as existing:
            if len(existing) == pages:
                return target
    scan_set = SETS["gen-noisy"]
    ensure(scan_set)
    out = pdfium.PdfDocument.new()
    try:
        sources = scan_set.documents()
        k = 0
        while len(out) < pages:  # the set's documents in turn, again from the first when they run out
            with pdfium.PdfDocument(str(sources[k % len(sources)])) as src:
                out.import_pages(src, list(range(min(len(src), pages - len(out)))))
            k += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        out.save(str(target))
    finally:
        out.close()
    return target


def memory_run(path: Path) -> dict[str, Any]:
    """process_file on one big PDF; RSS after every page (wrapped reader) and sampled every 0.5 s."""
    import pipeline.scan as scan
    from pipeline.config import Limits, Settings
    from pipeline.process import process_file

    settings = Settings.from_env(isolation="thread", limits=Limits(max_pages=10_000))
    per_page: list[tuple[int, float, float]] = []
    original = scan._recognise  # once per page, on the reader's own thread, when the page is done
    t_start = time.perf_counter()

    def recording(ready: Any, *a: Any, **k: Any) -> Any:
        out = original(ready, *a, **k)
        per_page.append((int(ready.page.number), rss_now_mb(), time.perf_counter() - t_start))
        return out

    scan._recognise = recording  # type: ignore[assignment]
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_now_mb())
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    c0 = time.process_time()
    result = process_file(path, str(path), settings)
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c0
    stop.set()
    sampler.join()
    return {"pages": result.n_pages, "forms": len(result.forms), "status": result.status.value,
            "error": result.error, "wall": wall, "cpu": cpu, "peak_rss_mb": peak_rss_mb(),
            "sampled_max_mb": max(samples, default=0.0), "per_page": per_page, "timings": result.timings}


def step_memory(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    target = build_big_pdf(SETS["gen-noisy"].folder.parent / f"big{args.memory_pages}.pdf", args.memory_pages)
    log(f"memory: {target}")
    return {"pdf": str(target), "size_mb": target.stat().st_size / 2**20, **_subprocess(["memory", str(target)],
                                                                                        args.nice)}


# ------------------------------------------------------------------------------------------ entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["library", "pool", "memory"])
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args(argv)
    if args.what == "library":
        answer = library_rate([Path(p) for p in args.rest])
    elif args.what == "pool":
        answer = pool_throughput([Path(p) for p in args.rest[2:]], int(args.rest[0]), Path(args.rest[1]))
    else:
        answer = memory_run(Path(args.rest[0]))
    print("RESULT " + json.dumps(answer, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
