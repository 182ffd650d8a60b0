# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make demo   - install, then run formrescue on the bundled samples into out/demo
#   make test   - install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-all lint typecheck bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/formrescue run samples --out out/demo
	@echo "Open out/demo/review_queue.xlsx (or review_queue.csv) in Excel/WPS; records are in out/demo/forms.jsonl"

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything, including the slow full-OCR tests and the paddleocr engine (installed by scripts/install_paddleocr_extra.sh).
test-all: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check pipeline flows tests samples bench

typecheck: $(STAMP)
	$(BIN)/mypy pipeline

# The benchmark (bench/REPORT.md says what else it needs: the PaddleOCR and img2table venvs, Tesseract chi_sim).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,dask,bench]'
	$(BIN)/formrescue bench

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
