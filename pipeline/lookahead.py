"""Work on the next items of a stream on a background thread while the caller uses the current one.

The scan reader uses it to render and prepare page n+1 (decoding, masks, rules, line crops: NumPy and
OpenCV, which release the GIL) while page n is inside the OCR engine (ONNX Runtime, which releases it too),
so the work outside OCR mostly hides behind recognition instead of adding to it.

The stream is iterated on the background thread as well (a PDF page iterator renders there), and closed
there when the caller stops early or fails, so a file the iterator holds open is closed before
:meth:`Lookahead.__exit__` returns. An exception of the iterator or of ``work`` reaches the caller at the
item where it happened, as itself (an ``InputError`` of page 3 after the results of pages 1 and 2).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_POLL_SECONDS = 0.05  # how soon a background thread blocked on a full queue notices the caller has gone


@dataclass(frozen=True, slots=True)
class Done(Generic[R]):
    """One item's result with the wall and thread CPU time ``work`` took on the background thread."""

    result: R
    wall: float
    cpu: float


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _End:
    pass


def run_timed(work: Callable[[T], R], item: T) -> Done[R]:
    """``work(item)`` with the wall and thread CPU time it took (what :class:`Lookahead` hands over)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = work(item)
    return Done(result, time.perf_counter() - wall, time.thread_time() - cpu)


def _lower_priority(by: int) -> None:
    """Raise the calling thread's niceness by ``by`` (Linux only: elsewhere it would be the process's)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + by))
    except OSError:  # a sandbox that forbids it: the thread runs at the caller's priority, no harm done
        return


class Lookahead(Generic[T, R]):
    """``work(item)`` for each item of ``items``, on a background thread, up to ``depth`` results ahead.

    Use as a context manager and iterate it: results come in order as :class:`Done`. ``nicer`` raises the
    background thread's niceness by that much (Linux, where a thread has a priority of its own), so that
    it takes the CPU the caller's work leaves idle rather than slowing that work down. :meth:`background_cpu`
    is the background thread's CPU time so far, readable from the caller's thread while it runs, so that a
    CPU figure of the process taken around the caller's own work can leave the background's share out.
    """

    def __init__(self, items: Iterable[T], work: Callable[[T], R], *, depth: int = 1, nicer: int = 0,
                 name: str = "formrescue-lookahead") -> None:
        self._items = items
        self._nicer = nicer
        self._work = work
        self._queue: queue.Queue[Done[R] | _Failed | _End] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._clock_id: int | None = None
        self._final_cpu: float | None = None
        self._started = threading.Event()

    def __enter__(self) -> Lookahead[T, R]:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[Done[R]]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def background_cpu(self) -> float:
        """CPU seconds of the background thread so far (0.0 where threads have no CPU clock of their own)."""
        final = self._final_cpu
        if final is not None:
            return final
        if self._clock_id is None:
            return 0.0
        try:
            return time.clock_gettime(self._clock_id)
        except OSError:  # the thread ended between the check and the read: its final figure is set
            return self._final_cpu or 0.0

    def _run(self) -> None:
        getclock = getattr(time, "pthread_getcpuclockid", None)  # not on Windows
        if getclock is not None:
            self._clock_id = getclock(threading.get_ident())
        if self._nicer:
            _lower_priority(self._nicer)
        self._started.set()
        iterator = iter(self._items)
        try:
            for item in iterator:
                done = run_timed(self._work, item)
                del item
                if not self._put(done):
                    return
            self._put(_End())
        except BaseException as exc:
            self._put(_Failed(exc))
        finally:
            try:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # a generator's finally (a PDF closed) runs on the thread that used it
            finally:
                self._final_cpu = time.thread_time()

    def _put(self, item: Done[R] | _Failed | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
