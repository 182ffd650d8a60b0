"""Run configuration: engine choice, rendering, thresholds and safety limits, with safe defaults.

Everything here can be set from the command line or the environment (``FORMRESCUE_*``); the
``fingerprint`` decides whether a document processed earlier must be processed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pipeline.errors import ConfigError


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The project's shared material beside the checkout (seed dump, scans with truth, evaluate.py), used by
    the tests, the benchmark and scripts/eval_scans.py; ``FORMRESCUE_SHARED`` points elsewhere."""
    env = os.environ.get("FORMRESCUE_SHARED")
    return Path(env) if env else repo_root().parent / "shared"


def models_dir() -> Path:
    """``models/`` (catalogue, jieba dictionary, OCR configuration); ``FORMRESCUE_MODELS`` overrides."""
    env = os.environ.get("FORMRESCUE_MODELS")
    return Path(env) if env else repo_root() / "models"


def cache_dir() -> Path:
    """Where derived files (e.g. PaddleOCR model dirs built from installed wheels) are kept."""
    env = os.environ.get("FORMRESCUE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "formrescue"


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits: a file beyond any of them fails with a clear message instead of hurting the run."""

    max_file_bytes: int = 512 * 1024 * 1024
    max_pixels_per_page: int = 80_000_000  # ~ A3 at 600 dpi; a 60,000 x 60,000 "bomb" is far beyond
    max_pages: int = 500
    max_unzipped_bytes: int = 2 * 1024 * 1024 * 1024
    max_zip_ratio: float = 200.0  # uncompressed / compressed size of one member
    max_zip_members: int = 10_000
    max_zip_depth: int = 2
    seconds_per_document: float = 900.0  # enforced when documents run in worker processes (isolation "process")

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each overridable by its environment variable (see :data:`LIMIT_ENV`)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, variable in LIMIT_ENV.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            kind = float if name in ("max_zip_ratio", "seconds_per_document") else int
            try:
                value = kind(text.replace("_", ""))
            except ValueError:
                raise ConfigError(f"{variable}={text!r} is not a number") from None
            if value <= 0:
                raise ConfigError(f"{variable}={text!r} must be greater than 0")
            values[name] = value
        return replace(Limits(), **values)  # type: ignore[arg-type]


# The environment variable of each limit (the ``run`` command's --max-pixels, --max-pages, --timeout set them too).
LIMIT_ENV = {
    "max_file_bytes": "FORMRESCUE_MAX_FILE_BYTES",
    "max_pixels_per_page": "FORMRESCUE_MAX_PIXELS",
    "max_pages": "FORMRESCUE_MAX_PAGES",
    "max_unzipped_bytes": "FORMRESCUE_MAX_UNZIPPED_BYTES",
    "max_zip_ratio": "FORMRESCUE_MAX_ZIP_RATIO",
    "max_zip_members": "FORMRESCUE_MAX_ZIP_MEMBERS",
    "max_zip_depth": "FORMRESCUE_MAX_ZIP_DEPTH",
    "seconds_per_document": "FORMRESCUE_SECONDS_PER_DOCUMENT",
}
ISOLATIONS = ("process", "thread")


@dataclass(frozen=True, slots=True)
class Settings:
    engine: str = "rapidocr"
    dpi: int = 300
    catalogue: str | None = None  # path of a user catalogue; None = models/catalogue
    low_confidence: float = 0.90  # OCR confidence under which a value goes to review
    workers: int = 2
    # "process": each document runs in a worker process, stopped at its time limit and isolated from crashes;
    # "thread": in the flow's own process (no time limit; for debugging and monkeypatching tests).
    isolation: str = "process"
    limits: Limits = field(default_factory=Limits)

    @staticmethod
    def from_env(**overrides: object) -> Settings:
        base = Settings()
        env_engine = os.environ.get("FORMRESCUE_ENGINE")
        env_catalogue = os.environ.get("FORMRESCUE_CATALOGUE")
        if env_engine:
            base = replace(base, engine=env_engine)
        if env_catalogue:
            base = replace(base, catalogue=env_catalogue)
        isolation = os.environ.get("FORMRESCUE_ISOLATION", "").strip().lower()
        if isolation:
            if isolation not in ISOLATIONS:
                raise ConfigError(f"FORMRESCUE_ISOLATION={isolation!r} must be one of {', '.join(ISOLATIONS)}")
            base = replace(base, isolation=isolation)
        base = replace(base, limits=Limits.from_env())
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        """What changes the extracted values: a document done under another fingerprint is redone."""
        from pipeline import __version__

        relevant = {"version": __version__, "engine": self.engine, "dpi": self.dpi, "catalogue": self.catalogue,
                    "low_confidence": self.low_confidence}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
