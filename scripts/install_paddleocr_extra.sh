#!/usr/bin/env bash
# Install the optional `paddleocr` OCR engine (formrescue[paddleocr]) into the active Python environment.
#
# Run it after formrescue itself is installed (pip install -e '.[dev]'), and after any other pip install:
# paddlex (pulled by paddleocr) needs the distribution `opencv-contrib-python` (it checks that name before
# using cv2), while rapidocr and formrescue pull `opencv-python-headless`. Both wheels write the same `cv2`
# package, so with both installed one overwrites the other's files, and uninstalling either breaks cv2.
# This script leaves exactly one: opencv-contrib-python at the version paddlex pins. It serves rapidocr
# too (same cv2 API). `pip check` will then report that rapidocr/formrescue want opencv-python-headless;
# that is expected. A later `pip install` of formrescue brings the headless wheel back: rerun this script.
#
# Usage: bash scripts/install_paddleocr_extra.sh        (PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
pip_() { "$PYTHON" -m pip "$@"; }

if ! "$PYTHON" -c 'import importlib.metadata as m; m.version("formrescue")' 2>/dev/null; then
    echo "formrescue is not installed in $("$PYTHON" -c 'import sys; print(sys.prefix)'); first run: pip install -e '$ROOT[dev]'" >&2
    exit 1
fi

# 1. The extra's requirements, read from pyproject.toml so the pin lives in one place.
mapfile -t REQS < <("$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    print("\n".join(tomllib.load(fh)["project"]["optional-dependencies"]["paddleocr"]))
PY
)
echo "installing: ${REQS[*]}"
pip_ install "${REQS[@]}"

# 2. One OpenCV: remove every OpenCV wheel (their files overlap, so none survives a partial removal
#    intact), then put back only opencv-contrib-python at the version paddlex requires.
CV_VERSION="$("$PYTHON" - <<'PY'
import importlib.metadata as m
from packaging.requirements import Requirement
pins = [Requirement(r.split(";")[0]) for r in m.requires("paddlex") or [] if r.startswith("opencv-contrib-python")]
spec = str(pins[0].specifier) if pins else ""
print(spec[2:] if spec.startswith("==") else m.version("opencv-contrib-python"))
PY
)"
pip_ uninstall -y opencv-python-headless opencv-python opencv-contrib-python-headless opencv-contrib-python
pip_ install --no-deps "opencv-contrib-python==$CV_VERSION"

# 3. Check: a single OpenCV that imports, is the contrib build, and the engine's packages import.
"$PYTHON" - <<'PY'
import importlib.metadata as m
import cv2
def have(dist):
    try:
        m.version(dist)
        return True
    except m.PackageNotFoundError:
        return False
others = [d for d in ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless") if have(d)]
assert not others, f"still installed: {others}"
assert hasattr(cv2, "ximgproc"), "cv2 is not the contrib build"
assert m.version("opencv-contrib-python").startswith(cv2.__version__), (m.version("opencv-contrib-python"), cv2.__version__)
import onnxruntime, paddleocr, rapidocr  # noqa: F401
print(f"ok: cv2 {cv2.__version__} (opencv-contrib-python), paddleocr {m.version('paddleocr')}, "
      f"paddlex {m.version('paddlex')}, rapidocr {m.version('rapidocr')}, onnxruntime {m.version('onnxruntime')}, "
      f"numpy {m.version('numpy')}")
PY
