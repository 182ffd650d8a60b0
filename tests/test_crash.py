"""Issue 8, crashes and concurrency: a run killed with SIGKILL mid-batch loses nothing and redoes nothing
finished, a second run on the same OUT is refused, a document that hangs or crashes its worker fails alone.

The killed run is a real ``formrescue run`` subprocess, slowed by the test-only FORMRESCUE_TEST_DELAY_PER_DOC;
it talks to the session's Prefect test server (its PREFECT_API_URL), so it does not start a server of its own.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import EXIT_BUSY, EXIT_FAILED_DOCS, EXIT_OK, main
from pipeline.config import Limits, Settings
from pipeline.store import STORE_NAME, StateStore
from pipeline.workers import Job, WorkerPool, _death_cause, execute, worker_pool
from tests.badinputs import seed_variant
from tests.conftest import SEED, require_shared

N_DOCS = 8
DELAY = 2.0  # seconds per document in the killed run: 8 documents on 2 workers take >= 8 s


def _inbox(folder: Path, tags: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    text = SEED.read_text(encoding="utf-8")
    paths = []
    for tag in tags:
        path = folder / f"form-{tag}.txt"
        path.write_text(seed_variant(text, tag), encoding="utf-8")
        paths.append(path)
    return paths


def _db_rows(out: Path) -> dict[str, dict[str, object]]:
    db = sqlite3.connect(out / STORE_NAME)
    try:
        cursor = db.execute("SELECT doc_id, source, status, attempts, finished_at, result IS NOT NULL FROM documents")
        return {r[0]: {"source": r[1], "status": r[2], "attempts": r[3], "finished_at": r[4], "done": bool(r[5])}
                for r in cursor.fetchall()}
    finally:
        db.close()


def _count(out: Path, key: str, value: object) -> int:
    if not (out / STORE_NAME).exists():
        return 0
    try:
        return sum(1 for row in _db_rows(out).values() if row[key] == value)
    except sqlite3.OperationalError:  # the run is still creating its tables
        return 0


def _wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _cli_env(**extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env.update({"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_LOGGING_LEVEL": "WARNING", **extra})
    return env


def test_sigkill_mid_batch_then_rerun_loses_and_redoes_nothing(prefect_server: None, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    require_shared()
    tags = [f"甲{k}" for k in range(N_DOCS)]
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    _inbox(inbox, tags)
    command = [str(Path(sys.executable).parent / "formrescue"), "run", str(inbox), "--out", str(out), "--no-progress",
               "--workers", "2"]
    run = subprocess.Popen(command, env=_cli_env(FORMRESCUE_TEST_DELAY_PER_DOC=str(DELAY)), start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # 1. While it runs, a second run on the same OUT is refused at once and writes nothing.
        _wait_for(lambda: _count(out, "status", "running") > 0, 120, "the first run to start its documents")
        intruder = _inbox(tmp_path / "other", ["乙"])[0]
        assert main(["run", str(intruder), "--out", str(out), "--no-progress"]) == EXIT_BUSY
        err = capsys.readouterr().err
        assert f"another formrescue run is using this output folder (pid {run.pid})" in err
        assert all("乙" not in str(r["source"]) for r in _db_rows(out).values())
        # 2. Kill it (no chance to clean up) once some documents are finished and others are not.
        _wait_for(lambda: _count(out, "done", True) >= 2, 60, "two finished documents")
        os.kill(run.pid, signal.SIGKILL)
        run.wait(10)
        before = _db_rows(out)
        finished = {d for d, r in before.items() if r["done"]}
        assert 2 <= len(finished) < N_DOCS, f"{len(finished)} of {N_DOCS} finished before the kill"
        # Its worker processes notice and leave by themselves (no orphan holds memory or a document).
        _wait_for(lambda: not _group_alive(run.pid), 10, "the killed run's worker processes to exit")
    finally:
        if run.poll() is None or _group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(10)
        assert run.stdout is not None and run.stderr is not None
        run.stdout.close()
        run.stderr.close()
    (out / ".forms.jsonl.dead.tmp").write_text("half a file", encoding="utf-8")  # as if killed mid-export

    # 3. Rerun: everything complete, nothing duplicated or lost, finished documents not redone.
    assert main(["run", str(inbox), "--out", str(out), "--no-progress"]) == EXIT_OK
    db = sqlite3.connect(out / STORE_NAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
    after = _db_rows(out)
    assert len(after) == N_DOCS and all(r["done"] and r["status"] == "needs_review" for r in after.values())
    for doc_id, row in after.items():
        if doc_id in finished:
            assert row["attempts"] == 1 and row["finished_at"] == before[doc_id]["finished_at"], row
        else:
            assert row["attempts"] == 2, row
    lines = (out / "forms.jsonl").read_text(encoding="utf-8").splitlines()
    names = sorted(json.loads(line)["project_name"] for line in lines)
    assert names == sorted([f"G60科创走廊建设{t}" for t in tags] + [f"宣传与推广{t}" for t in tags])
    with (out / "projects.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2 * N_DOCS
    with (out / "indicators.csv").open(encoding="utf-8-sig", newline="") as handle:
        indicators = list(csv.DictReader(handle))
    assert len(indicators) == sum(len(json.loads(line)["indicators"]) for line in lines)
    assert not list(out.glob(".*.tmp")), "temporary files left in OUT"
    # And a third run has nothing to do.
    assert main(["run", str(inbox), "--out", str(out), "--no-progress"]) == EXIT_OK
    assert f"unchanged {N_DOCS}" in capsys.readouterr().out
    assert _db_rows(out) == after


def test_a_hanging_or_crashing_document_fails_alone(prefect_server: None, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared()
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    _inbox(inbox, ["hang-me", "crash-me", "ok-1", "ok-2"])
    monkeypatch.delenv("FORMRESCUE_SECONDS_PER_DOCUMENT", raising=False)
    monkeypatch.setenv("FORMRESCUE_TEST_HANG", "hang-me")
    monkeypatch.setenv("FORMRESCUE_TEST_CRASH", "crash-me")
    started = time.perf_counter()
    # One worker: the ones after the hang and the crash run on replacement workers.
    code = main(["run", str(inbox), "--out", str(out), "--no-progress", "--workers", "1", "--timeout", "3"])
    seconds = time.perf_counter() - started
    assert code == EXIT_FAILED_DOCS
    assert "FORMRESCUE_SECONDS_PER_DOCUMENT" not in os.environ  # --timeout applied for the command only
    rows = {Path(r.source).name: r for r in StateStore.for_output(out).documents()}
    hang, crash = rows["form-hang-me.txt"], rows["form-crash-me.txt"]
    assert hang.status.value == "failed"
    assert hang.error == (f"{inbox / 'form-hang-me.txt'}: stopped after 3 s, the time limit per document "
                          "(FORMRESCUE_SECONDS_PER_DOCUMENT or --timeout raise it)")
    assert crash.status.value == "failed"
    assert crash.error == (f"{inbox / 'form-crash-me.txt'}: the worker process reading it died (killed by SIGSEGV); "
                           "the file may crash the reader, it was not processed")
    assert rows["form-ok-1.txt"].status.value == rows["form-ok-2.txt"].status.value == "needs_review"
    assert seconds < 45, seconds


def test_worker_pool_replaces_a_worker_killed_while_idle() -> None:
    require_shared()
    settings = Settings(workers=1)
    job = Job(str(SEED), "seed.txt", settings, "d" * 64)
    with worker_pool(settings, warm=True) as pool:
        assert isinstance(pool, WorkerPool)
        assert pool.run(job).status.value == "needs_review"
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        time.sleep(0.2)
        assert pool.run(job).status.value == "needs_review"
        assert pool.pids() and pool.pids() != [pid]
    assert not pool.pids()  # closed with the block


def test_death_causes_read_clearly() -> None:
    assert _death_cause(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert "too much memory" in _death_cause(-signal.SIGKILL)
    assert _death_cause(3) == "exit status 3"


def test_an_unexpected_error_fails_the_document_not_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.process

    def broken(*args: object, **kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(pipeline.process, "process_file", broken)
    result = execute(Job(str(SEED), "seed.txt", Settings(), "e" * 64))
    assert result.status.value == "failed"
    assert result.error == ("seed.txt: internal error while processing it (IndexError: list index out of range); "
                            "please report it with this file")


def test_worker_pool_overhead_per_document(capsys: pytest.CaptureFixture[str]) -> None:
    """Process isolation costs little per document (the seed dump: ~0.2 s of work, no OCR)."""
    require_shared()
    settings = Settings(workers=1, limits=Limits())
    job = Job(str(SEED), "seed.txt", settings, "f" * 64)
    execute(job)  # warm this process's catalogue, as a worker's is warm after its first document
    n = 8
    with worker_pool(settings, warm=True) as pool:
        assert pool is not None
        started = time.perf_counter()
        pool.run(job)
        first = time.perf_counter() - started
        timings = {"thread": 0.0, "process": 0.0}
        for _ in range(n):  # interleaved, so both see the same machine load
            for mode in timings:
                started = time.perf_counter()
                execute(job) if mode == "thread" else pool.run(job)
                timings[mode] += time.perf_counter() - started
    thread, process = timings["thread"] / n, timings["process"] / n
    with capsys.disabled():
        print(f"\nworker pool: first document (worker start-up included) {first:.2f} s; per document "
              f"in-thread {thread * 1000:.0f} ms, in a worker {process * 1000:.0f} ms, overhead "
              f"{(process - thread) * 1000:+.0f} ms")
    assert process - thread < 0.25
