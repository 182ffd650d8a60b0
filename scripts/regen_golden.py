"""Regenerate the golden files of tests/test_golden.py. Run deliberately, then review `git diff tests/golden`."""

from __future__ import annotations

import sys

from tests.golden_cases import CASES, write_golden


def main() -> int:
    for name in sorted(CASES):
        print(f"wrote {write_golden(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
