"""Work done once on a shared cache: two processes that need one artifact build it once (the other
waits for it, `core.cache.build_once`), and two benches on one cache split the generating (claims in
the results store) and both end with every row, equal to a run alone's."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import BASE, RAG, micro, write_config

PROJECT = Path(__file__).resolve().parents[1]

# An SFT variant (a training lock beside the base model's) and chunks of 8 (4 x generation.batch_size):
# 60 generations in 8 chunks for two runs to split; a base model of 50 steps (its build is locked too).
CONFIG = micro(
    model={"builtin": {"steps": 50}},
    variants=[BASE, RAG, {"name": "sft", "adapter": "sft"}],
    training={"sft": {"epochs": 2, "learning_rate": 1e-2, "batch_size": 8}},
    generation={"max_new_tokens": 6, "batch_size": 2},
)

BUILD = """
import sys, time
from pathlib import Path
from core.cache import build_once

final, log = Path(sys.argv[1]), Path(sys.argv[2])
def build(tmp):
    with log.open("a") as fh:
        fh.write("built\\n")
    time.sleep(1.5)
    (tmp / "data").write_text("done")
print(build_once(final, build, what="the test artifact"))
"""


def test_two_processes_build_an_artifact_once(tmp_path):
    """Both get the artifact; one builds it, the other says once that it waits, then takes it."""
    final, log = tmp_path / "cache" / "thing", tmp_path / "log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD, str(final), str(log)],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(out.strip() for out, _ in outs) == ["False", "True"]
    assert log.read_text() == "built\n"
    assert (final / "data").read_text() == "done"
    waited = [err for _, err in outs if err.strip()]
    assert waited == ["waiting for another run building the test artifact\n"], outs
    # the lock file stays, tiny; no temporary folder does
    assert sorted(p.name for p in final.parent.iterdir()) == [".thing.lock", "thing"]


def test_claims_leave_a_live_runs_chunk_and_take_a_dead_or_silent_ones(tmp_path, monkeypatch):
    """A run claims what no one holds or a gone run held (dead on this host, silent, stuck), its own
    claims beat while it works, go with the rows it commits, and are dropped when it is done."""
    import harness.store
    from core.cache import writer_tag
    from harness.store import CLAIM_MAX_S, CLAIM_TIMEOUT_S, Claims, Store

    monkeypatch.setattr(harness.store, "BEAT_S", 0.05)
    store = Store(tmp_path / "results.sqlite")
    host = writer_tag().partition("@")[2]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    held = {  # key: (owner, since, last heartbeat)
        "live": (f"{sleeper.pid}@{host}", now, now),
        "dead": (f"{dead.pid}@{host}", now, now),
        "far": ("123@00000000", now - 60, now),  # another host, beating: left to it
        "silent": ("123@00000000", now, now - CLAIM_TIMEOUT_S - 1),  # another host, silent too long
        "stuck": (f"{sleeper.pid}@{host}", now - CLAIM_MAX_S - 1, now),  # alive, beating, but for hours
    }
    with store.db:
        store.db.executemany(
            "INSERT INTO claims (key, owner, since, beat) VALUES (?, ?, ?, ?)",
            [(k, *c) for k, c in held.items()],
        )
    store.put_generations([("stored", {"answer": "a", "tokens_in": 1, "tokens_out": 1, "latency_s": 0.0})])
    try:
        with Claims(store) as claims:
            keys = ["live", "dead", "far", "silent", "stuck", "stored", "new"]
            assert claims.take(keys) == {"dead", "silent", "stuck", "new"}
            assert claims.take(keys) == {"dead", "silent", "stuck", "new"}  # its own: still its own
            time.sleep(0.5)
            since, beat = store.db.execute("SELECT since, beat FROM claims WHERE key = 'dead'").fetchone()
            assert beat > since  # alive: its heartbeat keeps its claims
            rows = {"answer": "b", "tokens_in": 1, "tokens_out": 1, "latency_s": 0.0}
            store.put_generations([("new", rows)], owner=claims.owner)  # committed: its claim goes
            assert store.db.execute("SELECT COUNT(*) FROM claims WHERE key = 'new'").fetchone() == (0,)
        # closed: what it still held is dropped, for another run to take at once
        left = dict(store.db.execute("SELECT key, owner FROM claims").fetchall())
        assert left == {"live": held["live"][0], "far": "123@00000000"}
    finally:
        sleeper.kill()
        sleeper.wait()
        store.close()


class _Echo:
    """An engine answering each prompt with itself, noting each call's prompts."""

    mixes_adapters, chunk_size = False, 2

    def __init__(self):
        self.calls = []

    def generate(self, requests, progress=None):
        from harness.engines.types import Completion

        self.calls.append([r.prompt for r in requests])
        progress(len(requests))
        return [Completion(r.prompt, 1, 1, 0.0) for r in requests]


def test_a_run_waits_for_another_runs_chunk_and_takes_it_over_when_that_run_dies(tmp_path, monkeypatch):
    """Chunk 2 of 3 is another live run's: this run generates chunks 1 and 3, then waits; the other
    commits one of its rows and dies, and this run generates the other row itself."""
    import threading
    from types import SimpleNamespace

    import harness.run.generate as generate
    from core.cache import writer_tag
    from harness.engines import Request
    from harness.store import Store

    monkeypatch.setattr(generate, "POLL_S", 0.05)
    store, path = Store(tmp_path / "results.sqlite"), tmp_path / "results.sqlite"
    items = [SimpleNamespace(key=f"k{i}", adapter=None) for i in range(6)]
    requests = [Request(f"prompt {i}") for i in range(6)]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner, now = f"{other.pid}@{writer_tag().partition('@')[2]}", time.time()
    with store.db:
        store.db.executemany(
            "INSERT INTO claims (key, owner, since, beat) VALUES (?, ?, ?, ?)",
            [(k, owner, now, now) for k in ("k2", "k3")],
        )

    def commit_one_and_die():
        theirs = Store(path)
        row = {"answer": "theirs", "tokens_in": 1, "tokens_out": 1, "latency_s": 0}
        theirs.put_generations([("k3", row)], owner=owner)
        theirs.close()
        other.kill()
        other.wait()  # reaped: a zombie's pid would still look alive

    advanced = []
    engine = _Echo()
    timer = threading.Timer(0.5, commit_one_and_die)
    timer.start()
    try:
        made = generate._run(
            store, engine, [items[:2], items[2:4], items[4:]], [requests[:2], requests[2:4], requests[4:]],
            advanced.append,
        )
    finally:
        timer.join()
    assert engine.calls == [["prompt 0", "prompt 1"], ["prompt 4", "prompt 5"], ["prompt 2"]]
    assert made == 5 and sum(advanced) == 6
    answers = {k: r["answer"] for k, r in store.generations(f"k{i}" for i in range(6)).items()}
    assert answers == {f"k{i}": f"prompt {i}" for i in range(6)} | {"k3": "theirs"}
    assert store.db.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
    store.close()


def _bench(workdir: Path, cache: Path) -> subprocess.Popen:
    workdir.mkdir()
    write_config(workdir, CONFIG)
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "bench", "--config", str(workdir / "bench.yaml")],
        cwd=PROJECT,
        env=dict(os.environ, RAGVFT_CACHE=str(cache), COLUMNS="100"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(workdir: Path) -> tuple[dict, list[tuple]]:
    run = workdir / "runs" / "latest"
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    answers = [(r["variant"], r["question_id"], r["answer"], json.dumps(r["scores"])) for r in rows]
    return json.loads((run / "manifest.json").read_text())["cache"], answers


def test_two_benches_on_one_cache_do_the_work_once(tmp_path):
    """Started together on one fresh cache: the base model and the SFT adapter are trained once (the
    other run waits for them, and its manifest says cached), the generations are split (computed
    across both: a lone run's count), and both runs' rows equal each other's and a lone run's."""
    shared = tmp_path / "shared"
    procs = [_bench(tmp_path / name, shared) for name in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outs]
    alone = _bench(tmp_path / "alone", tmp_path / "own")
    out = alone.communicate(timeout=300)
    assert alone.returncode == 0, out[1][-3000:]

    (ca, rows_a), (cb, rows_b), (c1, rows_1) = (_run(tmp_path / n) for n in ("a", "b", "alone"))
    assert rows_a == rows_b == rows_1
    assert c1["generations_computed"] == len(rows_1) and c1["generations_cached"] == 0
    assert ca["generations_computed"] + cb["generations_computed"] == c1["generations_computed"]
    assert sorted([ca["adapters_trained"], cb["adapters_trained"]]) == [[], ["sft"]]
    assert sorted([ca["adapters_cached"], cb["adapters_cached"]]) == [[], ["sft"]]
    assert sorted([ca["base_model"], cb["base_model"]]) == ["built", "cached"]
    # the runs did overlap: one of them waited for the other's build
    assert any("waiting for another run building" in err for _, err in outs), [err for _, err in outs]
