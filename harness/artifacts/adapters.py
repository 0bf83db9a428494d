"""Every variant's adapter, and the built-in judge's: trained (TRL + PEFT) only when missing from the
cache, or a folder the config names, each with the identity its results are keyed by."""

from __future__ import annotations

import time
from pathlib import Path

from core.errors import InputError
from harness.artifacts.model import BaseModel
from harness.training import (
    JUDGE_METHOD,
    METHODS,
    Adapter,
    AdapterJob,
    TrainingMethod,
    ensure_adapter,
    existing_adapter,
)
from suites.schema import Suite


def adapter_job(
    config, suite: Suite, base: BaseModel, method: TrainingMethod | str, seed: int | None = None
) -> AdapterJob:
    """The job that trains `method`'s adapter on `suite` with `seed` (default: the run's), and first
    the adapter it starts from, with the same seed."""
    if isinstance(method, str):
        method = METHODS[method]
    seed = config.seed if seed is None else seed
    hyper = config.judge.builtin if method is JUDGE_METHOD else config.training.hyper(method.name)
    start = method.starts_from(hyper)
    return AdapterJob(
        method=method,
        base_identity=base.identity,
        base_path=base.path,
        rows=method.data(
            suite, hyper, config.seed, base.prompt_format
        ),  # the data is the run's; the seed is training's
        hyper=hyper.model_dump(),
        seed=seed,
        init=adapter_job(config, suite, base, start, seed) if start else None,
        revision=base.revision,
        trust_remote_code=base.trust_remote_code,
    )


def resolve_adapters(
    config, suite: Suite, base: BaseModel, timings: dict
) -> tuple[dict[str, list[Adapter]], list[str]]:
    """{variant name: its adapters, one per training seed (an adapter folder: one)} for every variant
    that has one, and the methods trained now. The first seed's adapter is the variant's primary one."""
    t0 = time.time()
    by_job: dict[tuple[str, int], Adapter] = {}
    out: dict[str, list[Adapter]] = {}
    trained: list[str] = []
    for i, v in enumerate(config.variants):
        if v.adapter is not None:
            for seed in config.training_seeds():
                if (v.adapter, seed) not in by_job:
                    job = adapter_job(config, suite, base, v.adapter, seed)
                    if not job.rows:
                        raise InputError(
                            config.source,
                            f"the suite {suite.name!r} has no training data for a {v.adapter} adapter",
                            field=f"variants.{i}.adapter",
                        )
                    by_job[v.adapter, seed] = ensure_adapter(job, trained=trained)
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


def judge_adapter(config, suite: Suite, base: BaseModel, timings: dict) -> Adapter:
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
    adapter = ensure_adapter(job)
    timings["judge_adapter_s"] = round(time.time() - t0, 2)
    return adapter
