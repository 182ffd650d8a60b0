"""Form extraction CPU with the profile's label normalisation memoised (prototype of a change to pipeline/profile.py).

    python bench/experiments/profile_cache.py DUMP_OR_PDF...

``Vocabulary.score`` normalises the same few hundred label variants (``label_key``) for every cell it is
asked about; memoising ``label_key`` and ``Vocabulary.score`` is the change measured. Both runs in this
process, alternating, best of three; the forms must come out identical.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    files = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    import pipeline.forms as forms
    import pipeline.profile as profile
    from pipeline.config import Settings
    from pipeline.process import process_file, shared_catalogue

    settings = Settings.from_env(isolation="thread")
    shared_catalogue(None)
    original_key, original_score = profile.label_key, profile.Vocabulary.score
    cached_key = functools.lru_cache(maxsize=65536)(original_key)

    @functools.lru_cache(maxsize=65536)
    def cached_score(self: profile.Vocabulary, text: str | None, *, fuzzy: bool = True, prefix: bool = False) -> float:
        return original_score(self, text, fuzzy=fuzzy, prefix=prefix)

    def use(cached: bool) -> None:
        profile.label_key = cached_key if cached else original_key  # type: ignore[assignment]
        forms.label_key = profile.label_key  # type: ignore[attr-defined]
        profile.Vocabulary.score = cached_score if cached else original_score  # type: ignore[method-assign]

    best: dict[bool, float] = {}
    outputs: dict[bool, list[object]] = {}
    for _ in range(3):
        for cached in (False, True):
            use(cached)
            c0 = time.process_time()
            results = [process_file(f, str(f), settings) for f in files]
            cpu = time.process_time() - c0
            best[cached] = min(best.get(cached, cpu), cpu)
            outputs[cached] = [tuple(f.to_dict() for f in r.forms) for r in results]
    n_forms = sum(len(o) for o in outputs[False])
    print(f"forms {n_forms}: CPU {best[False]:.3f} s as shipped, {best[True]:.3f} s memoised "
          f"({best[True] / best[False]:.2f}x); identical output: {outputs[False] == outputs[True]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
