"""Text-layer PDFs at a lower rendering resolution: the page image is only needed for the ruling lines there.

    python bench/experiments/textlayer_dpi.py [--dpi 300,150,100] [--docs 10]

For each resolution: process_file on the generated clean set's text-layer PDFs (words come from the PDF, so
no OCR), CPU seconds per form, and evaluate.py against the set's truth (the text-layer twin holds the same
forms as the scan).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datasets import SETS  # noqa: E402
from bench.scoring import EVALUATE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dpi", default="300,150,100")
    parser.add_argument("--docs", type=int, default=10)
    args = parser.parse_args(argv)
    from pipeline.config import Settings
    from pipeline.export import export
    from pipeline.process import process_file, shared_catalogue

    folder = SETS["gen-clean"].folder
    files = sorted(folder.glob("*.textlayer.pdf"))[: args.docs]
    truths = [folder / (f.name.removesuffix(".textlayer.pdf") + ".truth.json") for f in files]
    shared_catalogue(None)
    print("| dpi | forms | CPU s per form | wall s per form | render | scan | forms | evaluate.py |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for dpi in [int(d) for d in args.dpi.split(",")]:
        settings = Settings.from_env(isolation="thread", dpi=dpi)
        process_file(files[0], str(files[0]), settings)  # warm-up
        results = []
        stages: dict[str, float] = {}
        c0, t0 = time.process_time(), time.perf_counter()
        for f in files:
            r = process_file(f, str(f), settings)
            results.append(r)
            for k, v in r.timings.items():
                stages[k] = stages.get(k, 0.0) + v
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        forms = sum(len(r.forms) for r in results)
        with tempfile.TemporaryDirectory() as tmp:
            export(Path(tmp), results)
            ev = subprocess.run([sys.executable, str(EVALUATE), tmp, *map(str, truths)], capture_output=True,
                                text=True, check=False).stdout.strip()
        print(f"| {dpi} | {forms} | {cpu / forms:.3f} | {wall / forms:.3f} | {stages.get('render', 0) / forms:.3f} | "
              f"{stages.get('scan_total', 0) / forms:.3f} | {stages.get('forms', 0) / forms:.3f} | {ev} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
