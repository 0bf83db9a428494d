"""Nothing lost, nothing duplicated, nothing leaked: a bench killed with SIGKILL at random points
resumes to exactly the results of an uninterrupted run, two cold runs agree, and a canary secret
in the environment never reaches a file a run writes."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import micro, write_config

CONFIG = micro(suite={"builtin": {"scale": 12}}, generation={"max_new_tokens": 12, "batch_size": 2})
CANARY = "sk-ragvft-canary-7f3e9a1c0b"


def _bench(workdir: Path, cache: Path, *, kill_after: float | None = None, kill_when=None) -> int | None:
    env = dict(os.environ, RAGVFT_CACHE=str(cache), OPENAI_API_KEY=CANARY, HF_TOKEN=CANARY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "bench", "--config", str(workdir / "bench.yaml")],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if kill_after is None and kill_when is None:
        return proc.wait(timeout=600)
    deadline = time.monotonic() + (kill_after if kill_after is not None else 300)
    while proc.poll() is None and time.monotonic() < deadline:
        if kill_when is not None and kill_when():
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return None


def _results(workdir: Path) -> list[tuple]:
    rows = [json.loads(x) for x in (workdir / "runs" / "latest" / "results.jsonl").read_text().splitlines()]
    return [
        (r["variant"], r["question_id"], r["answer"], json.dumps(r["scores"], sort_keys=True)) for r in rows
    ]


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    for d in (ref, killed):
        d.mkdir()
        write_config(d, CONFIG)
    assert _bench(ref, tmp_path / "cache-ref") == 0
    expected = _results(ref)

    cache = tmp_path / "cache-killed"
    db = cache / "results.sqlite"
    total = len(expected)

    def stored() -> int:
        if not db.exists():
            return 0
        con = sqlite3.connect(db)
        try:
            keys = [k for (k,) in con.execute("SELECT key FROM generations")]
        except sqlite3.OperationalError:  # the table is not created yet
            return 0
        finally:
            con.close()
        assert len(keys) == len(set(keys))  # never a duplicated row
        return len(keys)

    def building_base() -> bool:
        return any((cache / "models").glob(".builtin-base-*.tmp")) if (cache / "models").exists() else False

    rng = random.Random(11)
    kills = [
        building_base,  # while training the base model
        lambda: stored() >= 1,  # just after the first committed chunk of generations
        lambda: stored() >= total // 2,  # half way
        None,  # and at random moments
        None,
    ]
    after = []
    for when in kills:
        _bench(killed, cache, kill_when=when, kill_after=None if when else rng.uniform(1.0, 8.0))
        after.append(stored())
    assert 0 < after[1] < total and after[1] <= after[2] < total, after  # kills landed mid-generation
    assert _bench(killed, cache) == 0
    assert _results(killed) == expected  # nothing lost, same answers and scores as a cold run
    con = sqlite3.connect(cache / "results.sqlite")
    (n,) = con.execute("SELECT COUNT(*) FROM generations").fetchone()
    (n_scores, distinct) = con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM scores").fetchone()
    con.close()
    assert n_scores == distinct == len(expected) * 2  # one row per (answer, metric), none twice
    manifest = json.loads((killed / "runs" / "latest" / "manifest.json").read_text())
    assert n == manifest["cache"]["generations_cached"] + manifest["cache"]["generations_computed"]
    # no half-written run folder survives a kill
    assert not [p for p in (killed / "runs").iterdir() if p.name.endswith(".tmp")]

    for root in (ref, killed, tmp_path / "cache-ref", cache):
        for f in root.rglob("*"):
            if f.is_file():
                assert CANARY.encode() not in f.read_bytes(), f"the canary secret leaked into {f}"
