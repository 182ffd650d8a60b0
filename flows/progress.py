"""A progress bar for long runs, fed by the flows' progress hook."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class ProgressDisplay:
    """``with ProgressDisplay(enabled) as hook:`` — ``hook(source, done, total)`` advances the bar."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]formrescue"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"), transient=True)
            self._progress.start()
        return self

    def __call__(self, source: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("", total=total)
        name = source if len(source) <= 50 else "…" + source[-49:]
        self._progress.update(self._task, completed=done, total=total, description=name)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
