"""Shared fixtures. One Prefect test server for the whole session (it costs ~17 s to start), the shared
material (seed, scans, scorer), and a helper that runs the scorer on an output folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import shared_dir

REPO = Path(__file__).resolve().parent.parent
SHARED = shared_dir()
SEED = SHARED / "seed" / "000_9ccbaafc82c3a09f.txt"
SEED_TRUTH = SHARED / "seed" / "000_9ccbaafc82c3a09f.expected.json"
SCANS = SHARED / "scans"
EVALUATE = SHARED / "tools" / "evaluate.py"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A Prefect test server for flows, shared by every test of the session."""
    from flows import prefect_env

    # The harness makes a fresh temporary database, which must be migrated whatever the project home says.
    os.environ["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "true"
    prefect_env.configure()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=240):
        yield


def require_shared() -> None:
    if not SEED.exists():
        pytest.fail(f"the shared material is missing: {SHARED} (set FORMRESCUE_SHARED)")


def evaluate(out: Path, *truth: Path, min_accuracy: float | None = None, max_silent: float | None = None
             ) -> tuple[int, dict[str, float]]:
    """Run ../shared/tools/evaluate.py; returns its exit code and its figures."""
    command = [sys.executable, str(EVALUATE), str(out), *map(str, truth)]
    if min_accuracy is not None:
        command += ["--min-accuracy", str(min_accuracy)]
    if max_silent is not None:
        command += ["--max-silent", str(max_silent)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    figures = {k: float(v.split("/")[0]) for k, v in re.findall(r"(\w+) ([0-9.]+(?:/[0-9]+)?)", line)}
    if not figures:
        raise AssertionError(f"evaluate.py printed no figures: {done.stdout} {done.stderr}")
    return done.returncode, figures
