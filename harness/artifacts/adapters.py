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


def adapter_job(config, suite: Suite, base: BaseModel, method: TrainingMethod | str) -> AdapterJob:
    """The job that trains `method`'s adapter on `suite` (and, first, the adapter it starts from)."""
    if isinstance(method, str):
        method = METHODS[method]
    hyper = config.judge.builtin if method is JUDGE_METHOD else config.training.hyper(method.name)
    start = method.starts_from(hyper)
    return AdapterJob(
        method=method,
        base_identity=base.identity,
        base_path=base.path,
        rows=method.data(suite, hyper, config.seed),
        hyper=hyper.model_dump(),
        seed=config.seed,
        init=adapter_job(config, suite, base, start) if start else None,
        revision=base.revision,
        trust_remote_code=base.trust_remote_code,
    )


def resolve_adapters(
    config, suite: Suite, base: BaseModel, timings: dict
) -> tuple[dict[str, Adapter], list[str]]:
    """{variant name: its adapter} for every variant that has one, and the methods trained now."""
    t0 = time.time()
    by_method: dict[str, Adapter] = {}
    out: dict[str, Adapter] = {}
    trained: list[str] = []
    for i, v in enumerate(config.variants):
        if v.adapter is not None:
            if v.adapter not in by_method:
                job = adapter_job(config, suite, base, v.adapter)
                if not job.rows:
                    raise InputError(
                        config.source,
                        f"the suite {suite.name!r} has no training data for a {v.adapter} adapter",
                        field=f"variants.{i}.adapter",
                    )
                by_method[v.adapter] = ensure_adapter(job, trained=trained)
            out[v.name] = by_method[v.adapter]
        elif v.adapter_path is not None:
            try:
                out[v.name] = existing_adapter(v.name, Path(v.adapter_path))
            except FileNotFoundError as e:
                raise InputError(config.source, str(e), field=f"variants.{i}.adapter_path") from None
    for a in out.values():  # an SFT adapter trained as DPO's start was trained now too
        if a.status == "cached" and a.name in trained:
            a.status = "trained"
    timings["adapters_s"] = round(time.time() - t0, 2)
    return out, trained


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
