"""Two benches on one cache: the wall time of one `ragvft bench` alone on a fresh cache, against two
started together on one fresh cache (the base model and the SFT adapter built once, the other run
waiting for them; the generations split by claims), and, with --unshared, two started together each
on a fresh cache of its own (every piece of work done twice: what two runs on one cache cost before).
It checks that every run's results.jsonl holds the same answers and scores, and that the runs on
one cache computed as many generations between them as the run alone. With --warm every cache starts
as a copy of one where the base model and the adapter are built (without its results store): what is
compared is then the generating (and the rest of a run), as on a cache shared by CI jobs.

    .venv/bin/python bench/shared_cache.py [--scale 8] [--steps 200] [--unshared] [--warm]

The config is the tests' micro one (a 1-layer built-in base of `--steps` steps, the built-in suite at
`--scale`) with variants base, rag (BM25, k 2) and sft (an SFT adapter, 2 epochs), generation in
chunks of 8 (batch 2). Everything is trained from nothing in every cache: the base model, the
adapter, then 3 x (questions) generations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
name: shared-cache
seed: 3
suite:
  builtin: {{seed: 3, scale: {scale}}}
model:
  builtin: {{steps: {steps}, hidden_size: 32, layers: 1, batch_size: 8, pool_scale: 3, learning_rate: 1.0e-2}}
generation: {{max_new_tokens: 6, batch_size: 2}}
retrievers:
  bm25: {{kind: bm25}}
variants:
  - name: base
  - name: rag
    retriever: bm25
    k: 2
  - name: sft
    adapter: sft
training:
  sft: {{epochs: 2, learning_rate: 1.0e-2, batch_size: 8}}
baseline: base
metrics: [em, f1]
bootstrap_samples: 200
"""


def start(workdir: Path, cache: Path, config: str) -> subprocess.Popen:
    """`ragvft bench` on `config` in `workdir`, its artifacts in `cache`."""
    workdir.mkdir(parents=True)
    (workdir / "bench.yaml").write_text(config)
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "bench", "--config", str(workdir / "bench.yaml")],
        cwd=ROOT,
        env=dict(os.environ, RAGVFT_CACHE=str(cache)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def together(runs: list[tuple[Path, Path]], config: str) -> tuple[float, list[dict]]:
    """Start a bench for each (workdir, cache) at once; (wall seconds until the last ends, each run's
    figures). A run that fails stops the script with its error."""
    t0 = time.perf_counter()
    procs = [start(w, c, config) for w, c in runs]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t0
    for p, err in zip(procs, errors, strict=True):
        if p.returncode != 0:
            sys.exit(f"a bench failed (exit {p.returncode}):\n{err[-2000:]}")
    return wall, [figures(w, err) for (w, _), err in zip(runs, errors, strict=True)]


def figures(workdir: Path, stderr: str) -> dict:
    """What a finished run says of its work: its manifest's cache record and total time, its rows."""
    run = workdir / "runs" / "latest"
    manifest = json.loads((run / "manifest.json").read_text())
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    return {
        "cache": manifest["cache"],
        "timings": manifest["timings"],
        "rows": [(r["variant"], r["question_id"], r["answer"], json.dumps(r["scores"])) for r in rows],
        "waited": [line for line in stderr.splitlines() if line.startswith("waiting for")],
    }


def describe(label: str, wall: float, runs: list[dict]) -> None:
    print(f"{label}: {wall:.1f} s wall")
    for i, r in enumerate(runs):
        c = r["cache"]
        print(
            f"  run {i + 1}: base model {c['base_model']} · adapters trained "
            f"{c['adapters_trained'] or 'none'} · generations computed {c['generations_computed']}, "
            f"cached {c['generations_cached']}"
        )
        stages = ", ".join(f"{k.removesuffix('_s')} {v}" for k, v in r["timings"].items() if v >= 0.5)
        print(f"    seconds: {stages}")
        for line in r["waited"]:
            print(f"    {line}")


def cache(root: Path, name: str, seed: Path | None) -> Path:
    """A cache for one measurement: none yet, or (--warm) a copy of `seed` without its results store."""
    if seed is not None:
        shutil.copytree(seed, root / name, ignore=shutil.ignore_patterns("results.sqlite*"))
    return root / name


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--scale", type=int, default=8, help="the built-in suite's scale")
    parser.add_argument("--steps", type=int, default=200, help="the built-in base model's training steps")
    parser.add_argument("--unshared", action="store_true", help="also two at once, a cache each")
    parser.add_argument("--warm", action="store_true", help="models built in every cache before")
    args = parser.parse_args()
    config = CONFIG.format(scale=args.scale, steps=args.steps)
    state = "a cache with the models built" if args.warm else "a fresh cache"
    with tempfile.TemporaryDirectory(prefix="ragvft-shared-") as tmp:
        root = Path(tmp)
        seed = root / "seed-cache" if args.warm else None
        if seed is not None:  # the models built once, copied into each measurement's cache
            together([(root / "seed", seed)], config)
        alone_s, alone = together([(root / "alone", cache(root, "cache-alone", seed))], config)
        describe(f"one bench alone, {state}", alone_s, alone)
        shared = cache(root, "cache-shared", seed)
        shared_s, two = together([(root / "a", shared), (root / "b", shared)], config)
        describe("two benches at once, one such cache", shared_s, two)
        if args.unshared:
            caches = [(root / n, cache(root, f"cache-{n}", seed)) for n in ("c", "d")]
            apart_s, apart = together(caches, config)
            describe(f"two benches at once, {state} each", apart_s, apart)
    computed = alone[0]["cache"]["generations_computed"]
    same = all(r["rows"] == alone[0]["rows"] for r in two)
    split = sum(r["cache"]["generations_computed"] for r in two)
    print(f"rows identical to the run alone: {same} ({len(alone[0]['rows'])} rows)")
    print(f"generations computed: alone {computed}, the two on one cache {split} between them")
    print(f"ratio, two at once on one cache / one alone: {shared_s / alone_s:.2f}")
    if args.unshared:
        print(f"ratio, two at once on caches of their own / one alone: {apart_s / alone_s:.2f}")
    return 0 if same and split == computed else 1


if __name__ == "__main__":
    raise SystemExit(main())
