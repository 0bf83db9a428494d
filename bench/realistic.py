"""A user's own model at real dimensions on this CPU: a randomly initialised Llama of about 100M
parameters (32k vocabulary, 768 wide, 8 layers, grouped-query attention) in a hub-style folder with a
chat template (`harness.builtin.standin`), through `ragvft bench` with base, sft (a few steps) and rag
variants on the built-in domain's 52 test questions.

    .venv/bin/python bench/realistic.py [--layers 8] [--hidden 768] [--vocab 32000] [--keep]

Each bench runs as its own process, twice: a cold run (the adapter trained, every answer generated)
and a warm one (everything cached). Prints, from one invocation:
- wall time per phase of the cold run (the manifest's timings);
- peak resident memory of each run's process (`wait4`'s ru_maxrss) as a multiple of the model's
  size in memory (float32 on a CPU); goal <= 2.5x, which one load per phase and releasing it between
  phases make possible (training loads a copy of its own, freed before generation loads);
- the time to compute the model's identity on the warm run (goal < 1 s): a fast fingerprint of the
  folder (names, sizes, mtimes of weights; the hash of its small files), not a hash of its weights.
- the cold run's peak after each phase (the manifest's `memory_peak_mib`) and the peak above what the
  process held at the start (the interpreter and its libraries), as a multiple of the model.

Quality is not the point (random weights): speed, memory and the paths a real model takes are.
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONFIG = """\
name: realistic
seed: 7
suite:
  builtin: {{seed: 7, scale: 10}}
model:
  path: {model}
generation: {{max_new_tokens: 16, batch_size: 16}}
retrievers:
  bm25: {{kind: bm25}}
training:
  sft: {{epochs: {epochs}, batch_size: 4, gradient_accumulation_steps: 1}}
variants:
  - name: base
  - name: sft
    adapter: sft
  - name: rag
    retriever: bm25
    k: 2
baseline: base
bootstrap_samples: 200
"""


def build(folder: Path, args: argparse.Namespace) -> float:
    """Build the model folder in a process of its own: Linux carries a process's peak resident memory
    over fork and exec, so a parent that built the model would lend its peak to every bench it runs."""
    spec = {
        "vocab_size": args.vocab,
        "hidden_size": args.hidden,
        "layers": args.layers,
        "heads": args.hidden // 64,
        "kv_heads": max(1, args.hidden // 256),
        "intermediate_size": int(args.hidden * 8 / 3) // 64 * 64,
        "max_length": 2048,
        "steps": 0,  # random weights: real dimensions, not quality
        "tokenizer_seeds": args.tokenizer_seeds,
    }
    code = (
        "import json, sys; from harness.builtin.standin import StandinSpec, build_standin; "
        "build_standin(sys.argv[1], StandinSpec(**json.loads(sys.argv[2])))"
    )
    t0 = time.time()
    subprocess.run([sys.executable, "-c", code, str(folder), json.dumps(spec)], cwd=ROOT, check=True)
    return time.time() - t0


def run_bench(config: Path, cache: Path) -> tuple[dict, float, float]:
    """One `ragvft bench` in a process of its own: (manifest, wall s, peak RSS bytes)."""
    env = os.environ | {"RAGVFT_CACHE": str(cache), "TQDM_DISABLE": "1"}
    t0 = time.time()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ragvft"), "bench", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None  # stdout=PIPE
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    if proc.returncode != 0:
        sys.exit(f"bench failed ({proc.returncode}):\n{out[-3000:]}")
    manifest = json.loads((config.parent / "runs" / "latest" / "manifest.json").read_text())
    return manifest, wall, usage.ru_maxrss * 1024  # kB on Linux


def main() -> None:
    args = _arguments()
    work = Path(tempfile.mkdtemp(prefix="ragvft-realistic-"))
    try:
        model = work / "model"
        built = build(model, args)
        from harness.builtin.standin import STANDIN_RECORD

        record = json.loads((model / STANDIN_RECORD).read_text())  # {"parameters", "vocab", ...}
        config = work / "bench.yaml"
        config.write_text(CONFIG.format(model=model, epochs=args.epochs))
        cold = run_bench(config, work / "cache")
        warm = run_bench(config, work / "cache")
        _report(args, record, built, cold, warm)
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--tokenizer-seeds", type=int, default=120, help="text drawn to train the tokenizer")
    p.add_argument("--epochs", type=float, default=0.35, help="SFT epochs (35 pairs, 4 a step)")
    p.add_argument("--keep", action="store_true", help="keep the working folder and print it")
    return p.parse_args()


def _report(
    args: argparse.Namespace,
    record: dict,
    built: float,
    cold_run: tuple[dict, float, float],
    warm_run: tuple[dict, float, float],
) -> None:
    """The model, the cold run's phases, both runs' peak memory and the warm run's model identity."""
    (cold, cold_wall, cold_rss), (warm, warm_wall, warm_rss) = cold_run, warm_run
    params, vocab = record["parameters"], record["vocab"]
    size = params * 4  # float32 in memory on a CPU (`model.dtype: auto`)
    t = cold["timings"]
    sft = cold["adapters"]["sft"]["training"]
    print(
        f"model: Llama {params / 1e6:.1f}M parameters ({size / 2**20:.0f} MiB in float32), vocabulary "
        f"{vocab}, {args.layers} layers x {args.hidden}; built in {built:.1f} s (not counted)"
    )
    print(
        f"questions: {cold['suite']['questions']} x 3 variants (base, sft, rag); sft: "
        f"{sft['steps']} steps, {sft['tokens_per_s']} tokens/s"
    )
    print("cold run, wall time per phase (s):")
    for k in ("base_model_s", "adapters_s", "retrievers_s", "generate_s", "score_s", "total_s"):
        if k in t:
            print(f"  {k[:-2]:<12} {t[k]:8.2f}")
    print(f"  process      {cold_wall:8.2f}  (interpreter start and imports included)")
    mib = size / 2**20
    print(
        f"peak resident memory: cold {cold_rss / 2**20:.0f} MiB = {cold_rss / size:.2f}x the model; "
        f"warm (no model loaded) {warm_rss / 2**20:.0f} MiB = {warm_rss / size:.2f}x  (goal <= 2.5x)"
    )
    phases = cold["memory_peak_mib"]
    start = phases["start"]
    print(
        "cold run's peak after each phase (MiB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in phases.items())
        + f"; above the interpreter and libraries at the start ({start:.0f} MiB): "
        + f"{(cold_rss / 2**20 - start) / mib:.2f}x the model"
    )
    ident = warm["model"].get("identity_s")
    print(
        f"model identity on the warm run: {ident:.3f} s (goal < 1 s); "
        f"warm run wall {warm_wall:.1f} s, generations computed {warm['cache']['generations_computed']}"
    )


if __name__ == "__main__":
    main()
