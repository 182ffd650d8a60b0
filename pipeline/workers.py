"""Documents in worker processes: a time limit per document, and a crash that costs one document only.

A thread cannot be stopped, so a document that hangs (a pathological image, a reader stuck in a loop) or
crashes the interpreter (a segfault in a native decoder, the kernel's OOM killer) would take the whole run
with it. :class:`WorkerPool` runs each document in one of a few worker processes instead. Each worker loads
the catalogue (and, on its first scanned page, the OCR engine) once and is reused across documents; a worker
that overruns ``Limits.seconds_per_document`` or dies is killed, its document gets status ``failed`` with a
message saying so, and a fresh worker takes its place for the next document.

Flows open a pool with :func:`worker_pool` around their document tasks and call :func:`run_document` in
each task; with no pool open (``isolation="thread"``, or tasks running elsewhere, e.g. on Dask) a document
runs in the calling thread, with no time limit. A worker is a fresh interpreter (forking a process that runs
threads and event loops can deadlock, and would hand the output folder's lock to the children) and exits by
itself when its parent process disappears (e.g. on SIGKILL).

Test-only hooks, read from the environment when a document is dispatched (never set them in production):
``FORMRESCUE_TEST_DELAY_PER_DOC`` (seconds to sleep before each document), ``FORMRESCUE_TEST_HANG`` (a
document whose source contains this text sleeps until killed) and ``FORMRESCUE_TEST_CRASH`` (the worker
given such a document kills itself with SIGSEGV). Hang and crash act in worker processes only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from pipeline.config import Settings
from pipeline.datamodel import DocumentResult, Issue, Status
from pipeline.errors import FormRescueError

log = logging.getLogger("formrescue.workers")

WORKER_START_SECONDS = 300.0  # a worker's start-up (imports, catalogue) is not counted in a document's time
PARENT_CHECK_SECONDS = 0.5


class WorkerStartError(FormRescueError):
    """A worker process could not start (the environment is broken, not a document)."""

    code = "worker_start"


@dataclass(frozen=True, slots=True)
class TestHooks:
    """Test-only slow-downs and faults (see the module docstring)."""

    __test__ = False  # not a pytest test class

    delay: float = 0.0
    hang: str = ""
    crash: str = ""

    @staticmethod
    def from_env() -> TestHooks:
        text = os.environ.get("FORMRESCUE_TEST_DELAY_PER_DOC", "").strip()
        try:
            delay = float(text) if text else 0.0
        except ValueError:
            delay = 0.0
        return TestHooks(delay=delay, hang=os.environ.get("FORMRESCUE_TEST_HANG", ""),
                         crash=os.environ.get("FORMRESCUE_TEST_CRASH", ""))


@dataclass(frozen=True, slots=True)
class Job:
    path: str
    source: str
    settings: Settings
    doc_id: str
    aliases: tuple[tuple[str, str], ...] = ()
    out: str | None = None  # output folder, for the crops of flagged fields
    hooks: TestHooks = TestHooks()


def failed_result(job: Job, code: str, message: str, seconds: float = 0.0) -> DocumentResult:
    return DocumentResult(doc_id=job.doc_id, source=job.source, status=Status.FAILED, issues=(Issue(code, message),),
                          error=message, timings={"total": seconds})


def execute(job: Job, *, in_worker: bool = False) -> DocumentResult:
    """Process one document here and now. Never raises for a bad document, nor for a bug it runs into."""
    from pipeline.process import process_file

    hooks = job.hooks
    if hooks.delay > 0:
        time.sleep(hooks.delay)
    if in_worker and hooks.hang and hooks.hang in job.source:
        while True:
            time.sleep(3600)
    if in_worker and hooks.crash and hooks.crash in job.source:
        os.kill(os.getpid(), signal.SIGSEGV)
    started = time.perf_counter()
    try:
        return process_file(Path(job.path), job.source, job.settings, doc_id=job.doc_id, aliases=job.aliases,
                            out=Path(job.out) if job.out else None)
    except Exception as exc:  # a bug met on one document fails that document, not the batch; logged for a report
        log.exception("internal error while processing %s", job.source)
        message = (f"{job.source}: internal error while processing it ({type(exc).__name__}: {exc}); please report "
                   "it with this file")
        return failed_result(job, "internal_error", message, time.perf_counter() - started)


# ------------------------------------------------------------------------------------------- worker side


def _exit_with_parent(parent_pid: int) -> None:
    """Leave when the parent is gone (killed with SIGKILL, say): an orphan would hold memory, or hang."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="formrescue-parent-watch", daemon=True).start()


# A worker is ``python -c BOOTSTRAP FD``: a fresh interpreter with the parent's import path, talking over the
# socket FD. Unlike multiprocessing's spawn it does not re-run the parent's __main__ (a script without a
# ``__name__`` guard, a flow read from stdin, prefect.engine), and it inherits no other file descriptor.
_PATH_VARIABLE = "FORMRESCUE_WORKER_SYS_PATH"
_BOOTSTRAP = (f"import json, os, sys; sys.path[:] = json.loads(os.environ.pop({_PATH_VARIABLE!r})); "
              "from pipeline.workers import worker_main; worker_main(int(sys.argv[1]))")


def worker_main(fd: int) -> None:
    """The worker process: set up, then answer documents until told to stop or the parent is gone."""
    conn = Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    _exit_with_parent(os.getppid())
    try:
        catalogue, aliases = conn.recv()
        from pipeline.process import shared_catalogue

        shared_catalogue(catalogue, aliases)
    except Exception as exc:  # reported to the parent, which fails the run with it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        result = execute(job, in_worker=True)
        try:
            conn.send(("done", result))
        except (BrokenPipeError, OSError):
            return


# ------------------------------------------------------------------------------------------- parent side


def _death_cause(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if name == "SIGKILL":
            return "killed by SIGKILL, e.g. by the system for using too much memory"
        return f"killed by {name}"
    return f"exit status {exitcode}"


class _Worker:
    def __init__(self, settings: Settings, aliases: tuple[tuple[str, str], ...]) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env[_PATH_VARIABLE] = json.dumps([p for p in sys.path if isinstance(p, str)])
        # N workers share the cores: each OCR session gets its share, so they do not oversubscribe the CPU.
        env.setdefault("FORMRESCUE_OCR_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, settings.workers))))
        try:
            self.process = subprocess.Popen([sys.executable, "-c", _BOOTSTRAP, str(theirs.fileno())], env=env,
                                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send((settings.catalogue, aliases))
        self.ready = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            message = self.conn.recv() if self.conn.poll(WORKER_START_SECONDS) else ("error", "no answer")
        except (EOFError, OSError):
            message = ("error", _death_cause(self._wait(1.0)))
        if message[0] != "ready":
            self.kill()
            raise WorkerStartError(f"a worker process did not start ({message[1]})")
        self.ready = True

    def run(self, job: Job, limit: float) -> tuple[DocumentResult, bool]:
        """The document's result, and whether this worker can take another one."""
        started = time.monotonic()
        self.conn.send(job)
        if not self.conn.poll(limit):
            self.kill()
            message = (f"{job.source}: stopped after {limit:g} s, the time limit per document "
                       "(FORMRESCUE_SECONDS_PER_DOCUMENT or --timeout raise it)")
            return failed_result(job, "timeout", message, time.monotonic() - started), False
        try:
            kind, result = self.conn.recv()
        except (EOFError, OSError):
            cause = _death_cause(self._wait(2.0))
            self.kill()
            message = (f"{job.source}: the worker process reading it died ({cause}); the file may crash the "
                       "reader, it was not processed")
            return failed_result(job, "worker_crashed", message, time.monotonic() - started), False
        if kind != "done" or not isinstance(result, DocumentResult):
            raise RuntimeError(f"a worker answered {kind!r} to a document")
        return result, True

    def _wait(self, seconds: float) -> int | None:
        """The exit code once the process has ended (None if it is still running after ``seconds``)."""
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self._wait(5.0)
        self.conn.close()

    def ask_to_stop(self) -> None:
        if not self.ready:
            self.kill()  # still starting (a warm pool nobody needed): nothing to finish
            return
        with contextlib.suppress(BrokenPipeError, OSError):  # already gone: kill() reaps it
            self.conn.send(None)

    def stop(self) -> None:
        self._wait(2.0)
        self.kill()


class WorkerPool:
    """``size`` worker processes, started when first needed (or at once with ``warm``), each document run in
    one of them under the time limit of its settings. Thread-safe: one caller per worker at a time."""

    def __init__(self, size: int, settings: Settings, aliases: tuple[tuple[str, str], ...] = (),
                 warm: bool = False) -> None:
        self.size = max(1, size)
        self._settings = settings
        self._aliases = aliases
        self._slots: queue.Queue[_Worker | None] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(self.size):
            self._slots.put(self._start() if warm else None)

    def _start(self) -> _Worker:
        worker = _Worker(self._settings, self._aliases)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)

    def run(self, job: Job) -> DocumentResult:
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        worker = self._slots.get()
        try:
            if worker is not None and not worker.alive():
                self._discard(worker)  # died while idle (OOM-killed, say): replaced before use
                worker = None
            if worker is None:
                worker = self._start()
            worker.wait_ready()
            result, healthy = worker.run(job, job.settings.limits.seconds_per_document)
            if not healthy:
                self._discard(worker)
                worker = None if self._closed else self._start()  # a fresh worker, starting while we go on
            return result
        except BaseException:
            if worker is not None:
                self._discard(worker)
                worker = None
            raise
        finally:
            self._slots.put(worker)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers if w.pid is not None and w.alive()]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.ask_to_stop()
        for worker in workers:
            worker.stop()


_active_lock = threading.Lock()
_active: WorkerPool | None = None
_active_users = 0


@contextmanager
def worker_pool(settings: Settings, aliases: tuple[tuple[str, str], ...] = (), warm: bool = False
                ) -> Iterator[WorkerPool | None]:
    """The pool that :func:`run_document` uses while open (None with ``isolation="thread"``).

    Nested or concurrent openings in one process share the first pool, closed when the last one ends.
    """
    global _active, _active_users
    if settings.isolation != "process":
        yield None
        return
    with _active_lock:
        if _active is None:
            _active = WorkerPool(settings.workers, settings, aliases, warm=warm)
        pool = _active
        _active_users += 1
    try:
        yield pool
    finally:
        with _active_lock:
            _active_users -= 1
            last = _active_users == 0
            if last:
                _active = None
        if last:
            pool.close()


def active_pool() -> WorkerPool | None:
    return _active


def run_document(path: Path, source: str, settings: Settings, doc_id: str,
                 aliases: tuple[tuple[str, str], ...] = (), out: Path | None = None) -> DocumentResult:
    """Process one document: in a worker process when a pool is open, else in this thread."""
    job = Job(str(path), source, settings, doc_id, aliases, str(out) if out else None, TestHooks.from_env())
    pool = _active
    if pool is None or settings.isolation != "process":
        return execute(job)
    return pool.run(job)
