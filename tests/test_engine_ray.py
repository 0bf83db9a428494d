"""Generation spread over a real local Ray (2 CPUs): the same answers as one engine, a killed actor
replaced with its chunk resent, and a killed driver resumed with no duplicates and the same results."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MICRO, micro, write_config

ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")

RAY = {"max_new_tokens": 6, "batch_size": 2, "ray": {"workers": 2, "num_cpus": 2}}  # generation
# more variants, small batches: enough chunks (chunk = 4 x batch_size) to kill something mid-run
MORE = [{"name": "rag1", "retriever": "bm25", "k": 1}, {"name": "rag3", "retriever": "bm25", "k": 3}]
MICRO_MORE = micro(variants=[*MORE, *MICRO["variants"]])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    from harness.artifacts import resolve_model
    from harness.config import load_config
    from harness.run.pipeline import bench

    config = load_config(write_config(tmp_path_factory.mktemp("ray-ref"), MICRO_MORE))
    result = bench(config)
    result.base_path = resolve_model(config, {}).path
    return result


def _fresh_store(monkeypatch, cache_dir, tmp_path) -> Path:
    """The session's models, an empty results store: everything is generated again."""
    fresh = tmp_path / "cache"
    fresh.mkdir()
    for sub in ("models", "adapters"):
        if (cache_dir / sub).exists():
            (fresh / sub).symlink_to(cache_dir / sub)
    monkeypatch.setenv("RAGVFT_CACHE", str(fresh))
    return fresh


def test_ray_workers_give_the_same_answers_and_replace_a_killed_actor(
    reference, cache_dir, tmp_path, monkeypatch
):
    from harness.engines.ray import RayEngine, RayOptions
    from harness.engines.types import Decoding, Request
    from harness.run.engine import LazyEngine

    base = reference.base_path
    lazy = LazyEngine("hf", base, batch_size=4, ray=RayOptions(workers=2, num_cpus=2))
    engine = lazy.get()
    assert isinstance(engine, RayEngine)
    try:
        pids = ray.get([a.describe.remote() for a in engine.actors])
        assert len({p["pid"] for p in pids}) == 2  # two processes, each with its own engine
        d = Decoding(max_new_tokens=6)
        from harness import prompts

        rows = reference.rows
        chunks = [
            [
                Request(prompts.build(r["question"], r.get("retrieved_text")), decoding=d)
                for r in rows[i : i + 8]
            ]
            for i in range(0, len(rows), 8)
        ]
        got: dict[int, list] = {}
        for i, done in engine.generate_chunks(chunks):
            got[i] = done
            if len(got) == 1:  # kill one actor while chunks are still to come
                ray.kill(engine.actors[0], no_restart=True)
        assert engine.replaced >= 1
        assert sorted(got) == list(range(len(chunks)))  # every chunk once, none lost
        answers = [c.text for i in range(len(chunks)) for c in got[i]]
        assert answers == [r["answer"] for r in rows]
    finally:
        lazy.close()


def test_a_bench_under_ray_matches_one_engine(reference, cache_dir, tmp_path, monkeypatch):
    from harness.config import load_config
    from harness.run.pipeline import bench

    _fresh_store(monkeypatch, cache_dir, tmp_path)
    path = write_config(tmp_path, MICRO_MORE | {"generation": RAY})
    run = bench(load_config(path))
    assert run.manifest["engine"]["ray"]["workers"] == 2
    assert run.manifest["cache"]["generations_computed"] == len(run.rows)
    assert [r["answer"] for r in run.rows] == [r["answer"] for r in reference.rows]


def test_a_killed_driver_resumes_with_nothing_lost_or_duplicated(reference, cache_dir, tmp_path, monkeypatch):
    """Kill `ragvft bench` (and its Ray) once some chunks are committed; the rerun generates only the
    rest, and results.jsonl equals the reference run's with one row per (variant, question)."""
    fresh = _fresh_store(monkeypatch, cache_dir, tmp_path)
    path = write_config(tmp_path, MICRO_MORE | {"generation": RAY})
    env = os.environ | {"RAGVFT_CACHE": str(fresh)}
    cli = [str(Path(sys.executable).parent / "ragvft"), "bench", "--config", str(path)]
    proc = subprocess.Popen(
        cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    store = fresh / "results.sqlite"
    committed, deadline = 0, time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(store) as db:
                    committed = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    assert 0 < committed < len(reference.rows), f"killed after {committed} generations: not mid-run"

    again = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    runs = sorted((tmp_path / "runs").glob("*/results.jsonl"))
    rows = [json.loads(line) for line in runs[-1].read_text().splitlines()]
    manifest = json.loads((runs[-1].parent / "manifest.json").read_text())
    assert manifest["cache"]["generations_cached"] >= committed  # what was committed was kept
    keys = [(r["variant"], r["question_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(reference.rows)
    assert [r["answer"] for r in rows] == [r["answer"] for r in reference.rows]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == len(rows)  # one per answer
