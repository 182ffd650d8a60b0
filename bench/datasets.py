"""The benchmark's scan sets: generated (seed 1, three noise presets) and the shared office-rendered scans.

Generated sets are git-ignored under ``bench/data/seed1/<preset>`` and made with exactly::

    python -m samples.generator --n 30 --preset clean --seed 1 --out bench/data/seed1/clean
    python -m samples.generator --n 30 --preset noisy --seed 1 --out bench/data/seed1/noisy
    python -m samples.generator --n 30 --preset harsh --seed 1 --out bench/data/seed1/harsh

The same seed gives the same forms and layouts in every preset (only the scanning differs), so accuracy
against noise level compares like with like.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import shared_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "seed1"
SHARED = shared_dir() / "scans"
SEED = 1
N_DOCS = 30
NOISE_ORDER = ("clean", "noisy", "harsh")


@dataclass(frozen=True, slots=True)
class ScanSet:
    name: str
    noise: str  # clean | noisy | harsh
    origin: str  # "generated" | "shared"
    folder: Path
    pattern: str

    def documents(self, limit: int = 0) -> list[Path]:
        """The set's scanned PDFs (text-layer twins excluded), sorted; the first ``limit`` when > 0."""
        docs = sorted(p for p in self.folder.glob(self.pattern) if not p.name.endswith(".textlayer.pdf"))
        return docs[:limit] if limit > 0 else docs

    def truth(self, doc: Path) -> Path:
        return doc.with_name(doc.name.removesuffix(".pdf") + ".truth.json")

    def generate_command(self) -> list[str] | None:
        if self.origin != "generated":
            return None
        return [sys.executable, "-m", "samples.generator", "--n", str(N_DOCS), "--preset", self.noise, "--seed",
                str(SEED), "--out", str(self.folder.relative_to(ROOT))]


SETS: dict[str, ScanSet] = {s.name: s for s in (
    ScanSet("shared-clean", "clean", "shared", SHARED, "clean-*.pdf"),
    ScanSet("shared-noisy", "noisy", "shared", SHARED, "noisy-*.pdf"),
    ScanSet("gen-clean", "clean", "generated", DATA / "clean", "clean-1-*.pdf"),
    ScanSet("gen-noisy", "noisy", "generated", DATA / "noisy", "noisy-1-*.pdf"),
    ScanSet("gen-harsh", "harsh", "generated", DATA / "harsh", "harsh-1-*.pdf"),
)}


def ensure(scan_set: ScanSet, generate: bool = True) -> None:
    """Generate a missing generated set (minutes per set on a 2-core machine); shared sets must exist."""
    if len(scan_set.documents()) >= (N_DOCS if scan_set.origin == "generated" else 1):
        return
    command = scan_set.generate_command()
    if command is None or not generate:
        raise FileNotFoundError(f"scan set {scan_set.name} is missing under {scan_set.folder}"
                                + (f"; make it with: {' '.join(command[1:])}" if command else ""))
    print(f"generating {scan_set.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    subprocess.run(["nice", "-n", "10", *command], cwd=ROOT, check=True)
