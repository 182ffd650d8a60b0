"""Pages prepared on a background thread while the page before is recognised (pipeline.lookahead and
``read_pages(lookahead=True)``): same results as page by page, errors where they happened, files closed,
at most a page or two ahead."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.datamodel import PageImage, Word
from pipeline.errors import InputError
from pipeline.lookahead import Lookahead
from pipeline.scan import format_table, read_pages


def test_results_come_in_order_from_another_thread() -> None:
    caller = threading.get_ident()
    with Lookahead(range(20), lambda n: (n * n, threading.get_ident())) as ahead:
        done = list(ahead)
    assert [d.result[0] for d in done] == [n * n for n in range(20)]
    assert all(d.result[1] != caller for d in done)
    assert all(d.wall >= 0.0 and d.cpu >= 0.0 for d in done)


def test_an_error_arrives_after_the_items_before_it_as_itself() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise InputError("page 3 cannot be rendered (bad stream)", source="a.pdf")

    seen = []
    with pytest.raises(InputError, match="page 3 cannot be rendered"), Lookahead(items(), lambda n: n) as ahead:
        for done in ahead:
            seen.append(done.result)
    assert seen == [1, 2]


def test_stopping_early_closes_the_stream_on_its_own_thread_before_exit_returns() -> None:
    closed_on: list[int] = []
    pulled: list[int] = []

    def items() -> Iterator[int]:
        try:
            for n in range(100):
                pulled.append(n)
                yield n
        finally:
            closed_on.append(threading.get_ident())

    with Lookahead(items(), lambda n: n) as ahead:
        for done in ahead:
            if done.result == 2:
                time.sleep(0.2)  # give the background thread every chance to run ahead
                break
        thread = ahead._thread
    assert closed_on == [thread.ident]  # closed, by the thread that iterated it, before the with block ended
    assert not thread.is_alive()
    assert len(pulled) <= 3 + 2  # one result waiting in the queue, one in the background thread's hands


def test_background_cpu_counts_the_work_and_stays_readable_after_the_end() -> None:
    def burn(n: int) -> int:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            n += 1
        return n

    with Lookahead(range(3), burn) as ahead:
        list(ahead)
    if ahead.background_cpu() == 0.0:
        pytest.skip("no per-thread CPU clock on this platform")
    assert ahead.background_cpu() >= 0.15


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread has a priority of its own on Linux")
def test_background_thread_runs_nicer_and_the_caller_does_not() -> None:
    def niceness(_: int) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = niceness(0)
    with Lookahead([0], niceness, nicer=10) as ahead:
        (done,) = list(ahead)
    assert done.result == min(19, mine + 10)
    assert niceness(0) == mine


# ------------------------------------------------------------------------------------------- read_pages


class PixelEngine:
    """A deterministic line recogniser: each crop reads as its size and ink, so any change in what the
    reader cuts out shows in the table."""

    name = "pixels"

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.before_first: threading.Event | None = None

    def recognize(self, image: np.ndarray) -> list[Word]:
        raise AssertionError("the reader reads line crops, not whole pages")

    def recognize_lines(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        if self.before_first is not None:
            # the first recognition waits until the reader has pulled the next page: only a reader that
            # prepares ahead gets past this
            assert self.before_first.wait(timeout=30), "page 2 was not prepared while page 1 was recognised"
            self.before_first = None
        self.threads.add(threading.get_ident())
        return [(f"{c.shape[1]}x{c.shape[0]}:{int(c.mean())}", 0.99) for c in crops]


def _ruled_page(number: int, rows: int) -> PageImage:
    page = np.full((1400, 1000, 3), 250, np.uint8)
    tops = [200 + 90 * r for r in range(rows + 1)]
    for y in tops:
        page[y:y + 4, 100:900] = 30
    for x in (100, 400, 896):
        page[tops[0]:tops[-1] + 4, x:x + 4] = 30
    for r in range(rows):
        y = tops[r] + 30
        for k in range(1 + (r + number) % 4):  # "characters": a different line in every cell
            page[y:y + 34, 440 + 40 * k:470 + 40 * k] = 30
            page[y:y + 34, 140 + 50 * k:165 + 50 * k] = 60
    return PageImage(number, page, 300.0)


def _pages(n: int, pulled: list[int] | None = None, second_pulled: threading.Event | None = None,
           ) -> Iterator[PageImage]:
    for number in range(1, n + 1):
        if pulled is not None:
            pulled.append(number)
        if number == 2 and second_pulled is not None:
            second_pulled.set()
        yield _ruled_page(number, 4 + number % 3)


def test_read_pages_ahead_reads_the_same_table_as_page_by_page() -> None:
    in_turn = read_pages(_pages(4), PixelEngine(), lookahead=False)
    engine = PixelEngine()
    ahead = read_pages(_pages(4), engine, lookahead=True)
    assert format_table(ahead.table) == format_table(in_turn.table)
    assert "x" in format_table(ahead.table)  # the crops were read
    assert engine.threads == {threading.get_ident()}  # the engine is only ever called from the caller's thread
    assert [p.number for p in ahead.pages] == [1, 2, 3, 4]
    assert all(p.other_cpu_seconds > 0.0 and p.ocr_seconds > 0.0 for p in ahead.pages)


def test_next_page_is_prepared_while_this_one_is_recognised() -> None:
    engine = PixelEngine()
    engine.before_first = threading.Event()
    result = read_pages(_pages(3, second_pulled=engine.before_first), engine)
    assert result.table.n_rows > 0


def test_a_bad_page_fails_the_document_with_its_own_error() -> None:
    pulled: list[int] = []

    def pages() -> Iterator[PageImage]:
        yield from _pages(2, pulled)
        raise InputError("page 3 cannot be rendered (bad stream)", source="doc.pdf")

    with pytest.raises(InputError, match="page 3 cannot be rendered"):
        read_pages(pages(), PixelEngine())
    assert pulled == [1, 2]
