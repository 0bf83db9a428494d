"""Every variant's adapter, and the built-in judge's: trained (TRL + PEFT) only when missing from the
cache, or a folder the config names, each with the identity its results are keyed by."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterable
from pathlib import Path

from core.device import torch_device
from core.errors import InputError
from harness.artifacts.model import BaseModel, resolve_model
from harness.artifacts.suite import load_suite
from harness.config import BenchConfig
from harness.training import (
    JUDGE_METHOD,
    SECTIONS,
    Adapter,
    AdapterJob,
    TrainingMethod,
    ensure_adapter,
    existing_adapter,
)
from suites.schema import Suite


def adapter_job(
    config: BenchConfig, suite: Suite, base: BaseModel, method: TrainingMethod | str, seed: int | None = None
) -> AdapterJob:
    """The job that trains `method`'s adapter on `suite` with `seed` (default: the run's), and first
    the adapter it starts from, with the same seed."""
    if isinstance(method, str):
        method = SECTIONS[method]
    seed = config.seed if seed is None else seed
    if method is JUDGE_METHOD:
        given = config.judge.builtin if config.judge is not None else None  # `judge.builtin`'s settings
        hyper = method.config.of_profile(config.training.profile_of(config.model), given)
    else:
        hyper = config.training.hyper(method.name, config.model)
    if (problem := hyper.problem()) is not None:
        where = "judge.builtin" if method is JUDGE_METHOD else f"training.{method.name}"
        raise InputError(config.source, problem, field=where)
    start = method.starts_from(hyper)
    return AdapterJob(
        method=method,
        base_identity=base.identity,
        base_path=base.path,
        rows=method.data(
            suite, hyper, config.seed, base.prompt_format
        ),  # the data is the run's; the seed is training's
        hyper=hyper.settings(),
        seed=seed,
        init=adapter_job(config, suite, base, start, seed) if start else None,
        needs={
            role: adapter_job(config, suite, base, name, seed) for role, name in method.needs(hyper).items()
        },
        revision=base.revision,
        trust_remote_code=base.trust_remote_code,
        dtype=config.model.dtype,
        quantization=config.training.quantization,
        device_map=config.model.device_map,
        attn_implementation=config.model.attn_implementation,
    )


def _chain(job: AdapterJob) -> Iterable[AdapterJob]:
    """`job` and every job it starts from or needs."""
    yield job
    for first in ([job.init] if job.init else []) + list(job.needs.values()):
        yield from _chain(first)


def _check_data(config: BenchConfig, suite: Suite, job: AdapterJob, variant: int) -> None:
    """Every adapter a variant's needs (its own, what it starts from, its reward model) has training
    rows in this suite: else one line naming the variant, what is missing and where to get it."""
    for j in _chain(job):
        if not j.rows:
            name = config.variants[variant].name
            what = "it" if j is job else f"the {j.method.name} adapter it needs"
            raise InputError(
                config.source,
                f"variant {name!r} ({job.method.name}): the suite {suite.name!r} has no data to train {what}, "
                f"which takes {j.method.data_help}",
                field=f"variants.{variant}.adapter",
            )


def check_quantization(config: BenchConfig, jobs: Iterable[AdapterJob]) -> None:
    """4bit (QLoRA) needs a LoRA, CUDA and bitsandbytes: without one of them, one line naming
    `training.quantization` before anything trains, rather than a traceback from deep inside a load."""
    if config.training.quantization != "4bit":
        return

    def refuse(message: str) -> None:
        raise InputError(config.source, message, field="training.quantization")

    for job in (j for top in jobs for j in _chain(top)):
        if job.method.adapter_kind == "prompt":  # untried: no CUDA here, and TRL casts its weights to bf16
            refuse(
                f"4bit quantises the frozen base under a LoRA, but {job.method.name} trains a soft prompt: "
                "set quantization: none, or use a LoRA method (adapter: sft)"
            )
        if job.hyper["finetune"] == "full":
            refuse(
                f"4bit quantises the frozen base under a LoRA, but {job.method.name} has finetune: full: "
                "set quantization: none or finetune: lora"
            )
    if torch_device() != "cuda":
        refuse("4bit (QLoRA through bitsandbytes) needs a CUDA GPU and this machine has none: set none")
    if importlib.util.find_spec("bitsandbytes") is None:
        refuse("4bit needs the bitsandbytes package, which is not installed: pip install bitsandbytes")


def _variant_jobs(config: BenchConfig, suite: Suite, base: BaseModel) -> dict[tuple[str, int], AdapterJob]:
    """{(method, seed): its training job} for every variant's adapter, each checked for training data."""
    jobs: dict[tuple[str, int], AdapterJob] = {}
    for i, v in enumerate(config.variants):
        if v.adapter is None:
            continue
        for seed in config.training_seeds():
            if (v.adapter, seed) not in jobs:
                jobs[v.adapter, seed] = job = adapter_job(config, suite, base, v.adapter, seed)
                _check_data(config, suite, job, i)
    return jobs


def resolve_adapters(
    config: BenchConfig, suite: Suite, base: BaseModel, timings: dict[str, float]
) -> tuple[dict[str, list[Adapter]], list[str]]:
    """{variant name: its adapters, one per training seed (an adapter folder: one)} for every variant
    that has one, and the methods trained now. The first seed's adapter is the variant's primary one."""
    t0 = time.time()
    jobs = _variant_jobs(config, suite, base)  # every job first: the checks come before any training
    check_quantization(config, jobs.values())
    by_job: dict[tuple[str, int], Adapter] = {}
    out: dict[str, list[Adapter]] = {}
    trained: list[tuple[str, int]] = []  # (method, seed) of every adapter trained now
    for i, v in enumerate(config.variants):
        if v.adapter is not None:
            for seed in config.training_seeds():
                if (v.adapter, seed) not in by_job:
                    by_job[v.adapter, seed] = ensure_adapter(jobs[v.adapter, seed], trained=trained)
                out.setdefault(v.name, []).append(by_job[v.adapter, seed])
        elif v.adapter_path is not None:
            try:
                out[v.name] = [existing_adapter(v.name, Path(v.adapter_path))]
            except FileNotFoundError as e:
                raise InputError(config.source, str(e), field=f"variants.{i}.adapter_path") from None
    for adapters in out.values():  # an SFT adapter trained as DPO's start was trained now too
        for a in adapters:
            if a.status == "cached" and (a.name, a.seed) in trained:
                a.status = "trained"
    timings["adapters_s"] = round(time.time() - t0, 2)
    return out, sorted({name for name, _ in trained})


def primary(adapters: dict[str, list[Adapter]]) -> dict[str, Adapter]:
    """Each variant's adapter of the first training seed."""
    return {v: a[0] for v, a in adapters.items()}


def judge_adapter(config: BenchConfig, suite: Suite, base: BaseModel, timings: dict[str, float]) -> Adapter:
    """The built-in judge: a LoRA adapter on the base model trained (once, cached) to grade answers."""
    t0 = time.time()
    job = adapter_job(config, suite, base, JUDGE_METHOD)
    if not job.rows:
        raise InputError(
            config.source,
            f"the suite {suite.name!r} has no preference pairs to train a built-in judge on; "
            "give judge.http or judge.hf",
            field="judge.builtin",
        )
    check_quantization(config, [job])
    adapter = ensure_adapter(job)
    timings["judge_adapter_s"] = round(time.time() - t0, 2)
    return adapter


PROJECT = Path(__file__).resolve().parents[2]


def adapter_jobs(config: BenchConfig, suite: Suite, base: BaseModel) -> dict[str, AdapterJob]:
    """Every training job `config`'s variants need, each chain's parents included, by folder name."""
    names = sorted({v.adapter for v in config.variants if v.adapter is not None})
    return {j.path().name: j for n in names for j in _chain(adapter_job(config, suite, base, n))}


def ship_adapters(config: BenchConfig, out: Path) -> list[Path]:
    """Every adapter `config`'s variants need (what each starts from and needs included), trained
    when missing, copied to `out/adapters/<method>-<key>` with a model card: the embedded default's,
    shipped so a first run trains nothing (`make models`). Folders of other keys are removed."""
    import shutil

    from harness.builtin.shipped import adapter_card
    from harness.training.adapters import TRAINING_RECORD

    suite = load_suite(config)
    base = resolve_model(config, {})
    resolve_adapters(config, suite, base, {})
    jobs = adapter_jobs(config, suite, base)
    root = out / "adapters"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.iterdir():
        if stale.name not in jobs:
            shutil.rmtree(stale)
    written = []
    for name, job in sorted(jobs.items()):
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(job.path(), folder)
        record = json.loads((folder / TRAINING_RECORD).read_text())
        (folder / "README.md").write_text(adapter_card(record, config.name, base.identity))
        # where the base sat on the maintainer's machine says nothing elsewhere: name it by the project
        peft = json.loads((folder / "adapter_config.json").read_text())
        here = Path(peft.get("base_model_name_or_path") or "")
        if here.is_absolute() and here.is_relative_to(PROJECT):
            peft["base_model_name_or_path"] = str(here.relative_to(PROJECT))
            (folder / "adapter_config.json").write_text(json.dumps(peft, indent=2) + "\n")
        written.append(folder)
    return written
