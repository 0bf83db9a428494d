"""The embedded default's adapters ship with the project (`make models`), so a fresh clone's first
`make bench` trains nothing: each is found by its cache key, copied into the cache and used as is."""

import json
import subprocess
import sys
from pathlib import Path

from harness.builtin.shipped import SHIPPED, shipped_adapter
from tests.conftest import assert_input_error

ROOT = Path(__file__).resolve().parents[1]
FIVE_MB = 5 * 1024 * 1024


def _default_jobs():
    from harness.artifacts import load_suite, resolve_model
    from harness.artifacts.adapters import adapter_jobs
    from harness.config import load_config

    config = load_config(ROOT / "bench.yaml")
    suite = load_suite(config)
    return adapter_jobs(config, suite, resolve_model(config, {}))


def test_every_adapter_of_the_default_bench_is_shipped_small_with_its_card(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGVFT_CACHE", str(tmp_path / "cache"))
    jobs = _default_jobs()
    assert {"sft", "dpo", "cpt", "raft"} <= {j.method.name for j in jobs.values()}
    missing = [name for name in jobs if shipped_adapter(name) is None]
    assert missing == [], f"rebuild the shipped adapters with `make models` (missing: {missing})"
    for name in jobs:
        folder = SHIPPED / "adapters" / name
        files = [f for f in folder.iterdir() if f.is_file()]
        assert all(f.stat().st_size < FIVE_MB for f in files), [(f.name, f.stat().st_size) for f in files]
        record = json.loads((folder / "ragvft_training.json").read_text())
        assert name.endswith(record["key"]) and record["key"] in (folder / "README.md").read_text()
        assert not Path(
            json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        ).is_absolute()
    # nothing else ships: a stale adapter would be dead weight in every clone
    assert {f.name for f in (SHIPPED / "adapters").iterdir()} == set(jobs)


def test_a_shipped_adapter_is_copied_into_an_empty_cache_instead_of_trained(tmp_path, monkeypatch):
    from harness.training import ensure_adapter

    monkeypatch.setenv("RAGVFT_CACHE", str(tmp_path / "cache"))
    job = next(j for j in _default_jobs().values() if j.method.name == "sft")
    adapter = ensure_adapter(job, progress=False)
    assert adapter.status == "shipped" and adapter.path == job.path()
    assert adapter.path.is_relative_to(tmp_path / "cache")
    shipped = SHIPPED / "adapters" / job.path().name
    for f in shipped.iterdir():
        assert (adapter.path / f.name).read_bytes() == f.read_bytes(), f.name
    assert ensure_adapter(job, progress=False).status == "cached"  # the next run finds it in the cache


def test_models_build_rejects_an_unknown_part():
    ragvft = Path(sys.executable).with_name("ragvft")
    done = subprocess.run(
        [str(ragvft), "models", "build", "--only", "judges"], capture_output=True, text=True, check=False
    )
    assert_input_error(done, "--only 'judges'")
