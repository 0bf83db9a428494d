import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The real models `make real-models` fetched (and GGUF conversions) stay where they are while each
# session's artifact cache is a fresh folder (cache_dir below).
os.environ.setdefault("RAGVFT_MODELS", str(__import__("core.cache").cache.models_root()))

MICRO_CONFIG = """\
name: micro
seed: 3
suite:
  builtin: {seed: 3, scale: 4}
model:
  builtin: {steps: 200, hidden_size: 32, layers: 1, batch_size: 8, pool_scale: 3, learning_rate: 1.0e-2}
generation: {max_new_tokens: 6, batch_size: 16}
retrievers:
  bm25: {kind: bm25}
variants:
  - name: base
  - name: rag
    retriever: bm25
    k: 2
baseline: base
metrics: [em, f1]
bootstrap_samples: 200
"""


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One artifact cache for the whole session, so the micro model is trained once."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["RAGVFT_CACHE"] = str(path)
    return path


@pytest.fixture
def micro_config(tmp_path, cache_dir) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(MICRO_CONFIG)
    return path


@pytest.fixture(scope="session")
def micro_base(cache_dir, tmp_path_factory):
    """The micro config's built-in base model, built once per session: (config, suite, BaseModel)."""
    from harness.artifacts import load_suite, resolve_model
    from harness.config import load_config

    path = tmp_path_factory.mktemp("micro") / "bench.yaml"
    path.write_text(MICRO_CONFIG)
    config = load_config(path)
    return config, load_suite(config), resolve_model(config, {})
