"""What the tests share: the session's artifact cache and micro model, the micro config (as YAML text
and as data) and how a test builds its own config from it, the one check of an input error (exit 2,
one line), and a few helpers for the CLI, adapters and reports. Test files import from here and from
the helper modules beside it (browser.py, openai_server.py, review_run.py), never from each other."""

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The real models `make real-models` fetched (and GGUF conversions) stay where they are while each
# session's artifact cache is a fresh folder (cache_dir below).
os.environ.setdefault("RAGVFT_MODELS", str(__import__("core.cache").cache.models_root()))

# The micro config as written: the tests of error lines edit it as text (test_config_errors, test_synth).
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
# ...and as data, what every other config in the tests is built from (write_config).
MICRO: dict[str, Any] = yaml.safe_load(MICRO_CONFIG)
BASE, RAG = MICRO["variants"]  # {name: base} and {name: rag, retriever: bm25, k: 2}
DROP = object()  # as an override's value: leave that key out


def merged(data: dict, overrides: dict) -> dict:
    """A deep copy of `data` with `overrides` merged in: a dict into a dict key by key, any other value
    (a list included) in place of the old one, DROP removing the key."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def micro(**overrides: Any) -> dict:
    """The micro config as data, with `overrides` merged in (see merged)."""
    return merged(MICRO, overrides)


def write_config(
    folder: Path, data: dict | None = None, file: str = "bench.yaml", /, **overrides: Any
) -> Path:
    """`folder`/`file` holding `data` (the micro config when None) with `overrides` merged in."""
    path = folder / file
    path.write_text(yaml.safe_dump(merged(MICRO if data is None else data, overrides), sort_keys=False))
    return path


# The micro config on a user's own model (a hub id, never loaded by these tests): the `model` profile.
USERS_MODEL = micro(model={"builtin": DROP, "path": "some/model"})


def invoke(*args: Any) -> tuple[int, str]:
    """`ragvft ARGS...` in process: its exit code and output. A crash (an exception other than the
    command's own exit, which CliRunner keeps out of the output) fails the test here."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def cli_bench(folder: Path, data: dict | None = None, /, **overrides: Any):
    """`ragvft bench` on the config write_config writes: CliRunner's result."""
    from typer.testing import CliRunner

    from harness.cli import app

    return CliRunner().invoke(app, ["bench", "--config", str(write_config(folder, data, **overrides))])


def assert_input_error(
    result: Any, *fragments: str, bars: bool = False, no_run_in: Path | None = None
) -> str:
    """An input error as ragvft reports one: exit code 2, no traceback, one line of output holding every
    fragment (with `bars`, below the progress bars that may stand above it) and, with `no_run_in`, no run
    written in that folder. `result` is CliRunner's, a finished subprocess (its stderr) or a pair
    (exit code, output). Returns the line."""
    if isinstance(result, tuple):
        code, output = result
    elif hasattr(result, "exit_code"):
        code, output = result.exit_code, result.output
    else:
        code, output = result.returncode, result.stderr
    every = output.strip().splitlines()
    lines = [line for line in every if not (bars and "━" in line)]
    assert code == 2, output
    assert len(lines) == 1 and lines[0] == every[-1] and "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, output)
    if no_run_in is not None:
        assert not (no_run_in / "runs").exists()  # nothing written
    return lines[0]


# The adapter tests' settings: the SFT adapter they train is one key, trained once a session.
FAST_TRAINING = {"epochs": 30.0, "learning_rate": 1e-2, "batch_size": 8}
# The bench tests' `training.sft`: on the micro config's seed, one adapter trained once a session.
BENCH_SFT = {"epochs": 20, "learning_rate": 1e-2, "batch_size": 8}


def tuned_job(micro_base, method: str, **hyper: Any):
    """The micro bench's training job for `method`, its hyperparameters overridden by `hyper`."""
    from harness.artifacts import adapter_job

    config, suite, base = micro_base
    job = adapter_job(config, suite, base, method)
    job.hyper = job.hyper | hyper
    return job


def complete(engine, prompts: list[str], adapter: str | None = None, max_new_tokens: int = 8) -> list[str]:
    """The engine's answers to raw prompts, greedy and cut at the first newline, as variants answer."""
    from harness.engines import Decoding, Request

    decoding = Decoding(max_new_tokens=max_new_tokens)
    return [
        c.text for c in engine.generate([Request(p, adapter=adapter, decoding=decoding) for p in prompts])
    ]


# Script payloads a report must show as text, and the least a manifest holds for a report to render.
PAYLOADS = ["<script>window.pwned=1</script>", '<img src=x onerror="window.pwned=1">']
MANIFEST = {
    "run_name": "n",
    "run_id": "r",
    "suite": {"questions": 2, "passages": 1},
    "git": {"commit": None, "dirty": None},
    "model": {"kind": "x"},
    "hardware": {},
    "timings": {},
    "cache": {},
    "seeds": {},
}


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
