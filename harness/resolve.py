"""From the config to ready artifacts: the base model and every variant's adapter, built or trained
only when missing from the cache, each with the identity its results are keyed by."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from harness.adapters import Adapter, AdapterJob, ensure_adapter, existing_adapter, training_rows
from harness.basemodel import BUILD_RECORD, BaseModelSpec, build_base_model, is_built
from harness.cache import folder_hash
from harness.config import BenchConfig
from harness.errors import InputError
from suites.schema import Suite


@dataclass
class BaseModel:
    path: str  # a folder or a hub id
    identity: str  # what generation and adapter keys depend on
    info: dict  # what the manifest says about it


def resolve_model(config: BenchConfig, timings: dict) -> BaseModel:
    m = config.model
    if m.builtin is not None:
        spec = BaseModelSpec(
            seed=config.suite.builtin.seed,
            domain_scale=config.suite.builtin.scale,
            intermediate_size=3 * m.builtin.hidden_size,
            **m.builtin.model_dump(),
        )
        t0, cached = time.time(), is_built(spec)
        path = build_base_model(spec)
        timings["base_model_s"] = round(time.time() - t0, 2)
        record = json.loads((path / BUILD_RECORD).read_text())
        info = {
            "kind": "builtin",
            "key": spec.key(),
            "status": "cached" if cached else "built",
            "build": record,
        }
        return BaseModel(str(path), f"builtin:{spec.key()}", info)
    info = {"kind": "path", "path": m.path, "revision": m.revision, "status": "external"}
    return BaseModel(m.path, model_identity(m.path, m.revision), info)


def model_identity(name_or_path: str, revision: str | None) -> str:
    """A local folder is identified by the hash of its files' contents; a hub id by id and revision."""
    folder = Path(name_or_path)
    if folder.is_dir():
        return f"local:{folder_hash(folder)}"
    return f"hub:{name_or_path}@{revision or 'main'}"


def adapter_job(config: BenchConfig, suite: Suite, base: BaseModel, method: str) -> AdapterJob:
    hyper = getattr(config.training, method)
    init = None
    if method == "dpo" and hyper.init == "sft":
        init = adapter_job(config, suite, base, "sft")
    return AdapterJob(
        method=method,
        base_identity=base.identity,
        base_path=base.path,
        rows=training_rows(
            suite, method, shuffle_seed=config.seed if getattr(hyper, "shuffle_answers", False) else None
        ),
        hyper=hyper.model_dump(),
        seed=config.seed,
        init=init,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
    )


def resolve_adapters(
    config: BenchConfig, config_path: Path, suite: Suite, base: BaseModel, timings: dict
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
                        str(config_path),
                        f"the suite {suite.name!r} has no training data for a {v.adapter} adapter",
                        field=f"variants.{i}.adapter",
                    )
                by_method[v.adapter] = ensure_adapter(job, trained=trained)
            out[v.name] = by_method[v.adapter]
        elif v.adapter_path is not None:
            folder = (config_path.parent / v.adapter_path).resolve()
            try:
                out[v.name] = existing_adapter(v.name, folder)
            except FileNotFoundError as e:
                raise InputError(str(config_path), str(e), field=f"variants.{i}.adapter_path") from None
    for a in out.values():  # an SFT adapter trained as DPO's start was trained now too
        if a.status == "cached" and a.name in trained:
            a.status = "trained"
    timings["adapters_s"] = round(time.time() - t0, 2)
    return out, trained
