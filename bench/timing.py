"""A callable proxy that times the calls it passes on (standard library only: the img2table and PaddleOCR
venvs import it too)."""

from __future__ import annotations

import time
from typing import Any


class Timed:
    """Callable proxy that adds the wall time of each call to ``totals[key]`` and delegates the rest."""

    def __init__(self, target: Any, totals: dict[str, float], key: str) -> None:
        self._target = target
        self._totals = totals
        self._key = key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._target(*args, **kwargs)
        finally:
            self._totals[self._key] = self._totals.get(self._key, 0.0) + time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)
