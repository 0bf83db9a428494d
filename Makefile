# Two ways in: `make bench` and `make test`. Each sets itself up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup bench test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

bench: setup
	$(BIN)/ragvft bench --config bench.yaml

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check core harness suites retrievers judges reports tests bench

clean:
	rm -rf runs .pytest_cache
