"""Prototypes of the recommended speed changes, applied by monkeypatching in a benchmark process only.

Each function here is the exact change proposed for a library file (see bench/REPORT.md, "Recommended
changes"); the ``formrescue-proposed`` contender applies them so their effect is measured on the same pages
as the shipped code. Nothing outside the benchmark process is changed.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def fast_crop_png(image: np.ndarray, path: Path) -> None:
    """pipeline/crops.py ``_save_png`` without ``optimize=True`` and at zlib level 1: PIL's optimize tries
    every filter at maximum compression (about 0.2 s of CPU per crop); level 1 is 20x cheaper for ~30 % more
    bytes on a few-hundred-KB crop folder."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def memoise_labels() -> None:
    """pipeline/profile.py: ``functools.lru_cache`` on ``label_key`` and ``Vocabulary.score`` (pure functions
    of a frozen, hashable vocabulary and a string, asked about the same cells and variants over and over)."""
    import pipeline.forms as forms
    import pipeline.profile as profile

    if getattr(profile.label_key, "cache_info", None) is not None:
        return
    profile.label_key = functools.lru_cache(maxsize=65536)(profile.label_key)  # type: ignore[assignment]
    forms.label_key = profile.label_key  # type: ignore[attr-defined]
    original = profile.Vocabulary.score

    @functools.lru_cache(maxsize=65536)
    def score(self: Any, text: str | None, *, fuzzy: bool = True, prefix: bool = False) -> float:
        return float(original(self, text, fuzzy=fuzzy, prefix=prefix))

    profile.Vocabulary.score = score  # type: ignore[method-assign]


def apply(names: tuple[str, ...]) -> None:
    for name in names:
        if name == "fast-crops":
            import pipeline.crops as crops

            crops._save_png = fast_crop_png  # type: ignore[attr-defined]
        elif name == "memo-labels":
            memoise_labels()
        else:
            raise ValueError(f"unknown patch {name!r}")
