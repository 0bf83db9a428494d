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
from harness.config import BenchConfig, BM25Config, DenseConfig, HybridConfig
from harness.errors import InputError
from suites.schema import Suite

AUTO_BM25S_FROM = 10_000  # passages; below it rank-bm25 answers a query in milliseconds anyway


def load_suite(config: BenchConfig, config_path: Path) -> Suite:
    """The suite the config names, with any extra SFT pairs; paths are relative to the config."""
    suite = _load_suite(config, config_path)
    if config.training.extra_sft:
        from dataclasses import replace

        from suites.jsonl import read_jsonl
        from suites.schema import QAPair

        extra = tuple(
            QAPair(row["question"].strip(), row["answer"].strip(), fact_id=f"extra-{n}")
            for n, row in read_jsonl(
                config_path.parent / config.training.extra_sft, {"question": str, "answer": str}
            )
        )
        suite = replace(suite, training=replace(suite.training, sft=suite.training.sft + extra))
    return suite


def _load_suite(config: BenchConfig, config_path: Path) -> Suite:
    from suites.builtin import builtin_suite

    s = config.suite
    if s.builtin is not None:
        b = s.builtin
        return builtin_suite(b.seed, scale=b.scale, corpus_only_fraction=b.corpus_only_fraction)
    chunking = s.chunking
    here = config_path.parent
    if s.jsonl is not None:
        from suites.jsonl import load_jsonl_suite

        return load_jsonl_suite(
            here / s.jsonl.corpus, here / s.jsonl.questions, name=f"jsonl-{Path(s.jsonl.questions).stem}"
        )
    if s.squad is not None:
        from suites.squad import load_squad

        return load_squad(
            here / s.squad.path,
            words=chunking.words if chunking else 100,
            overlap=chunking.overlap if chunking else 20,
            limit=s.squad.limit,
            answer_prefix_chars=s.squad.answer_prefix_chars,
        )
    from suites.pubmedqa import load_pubmedqa

    p = s.pubmedqa
    return load_pubmedqa(
        here / p.path,
        test_ids=here / p.test_ids if p.test_ids else None,
        limit=p.limit,
        chunking=(chunking.words, chunking.overlap) if chunking else None,
    )


def resolve_retrievers(
    config: BenchConfig, config_path: Path, suite: Suite, timings: dict
) -> tuple[dict, dict]:
    """{name: retriever} for every retriever in the config, and what the manifest says of them.

    Dense indexes and the built-in embedder are built only when missing from the cache.
    """
    from retrievers import BM25Retriever, DenseRetriever, HybridRetriever
    from retrievers.embedder import (
        EmbedderSpec,
        build_builtin_embedder,
        embedder_identity,
        load_embedder,
    )

    t0 = time.time()
    built: dict = {}
    info: dict = {}
    encoders: dict = {}
    for name, r in config.retrievers.items():
        if isinstance(r, BM25Config):
            backend = r.backend
            if backend == "auto":
                backend = "rank-bm25" if len(suite.passages) < AUTO_BM25S_FROM else "bm25s"
            built[name] = BM25Retriever(suite.passages, k1=r.k1, b=r.b, backend=backend)
            info[name] = {"kind": "bm25", "backend": backend}
        elif isinstance(r, DenseConfig):
            e = r.embedder
            if e.builtin is not None:
                spec = EmbedderSpec(
                    hidden_size=e.builtin.hidden_size,
                    layers=e.builtin.layers,
                    epochs=e.builtin.epochs,
                    batch_size=e.builtin.batch_size,
                    learning_rate=e.builtin.learning_rate,
                    seed=config.seed,
                )
                pairs = list(suite.training.retrieval)
                if not pairs:
                    raise InputError(
                        str(config_path),
                        f"the suite {suite.name!r} has no retrieval training pairs for a built-in embedder; "
                        "give `embedder.path`",
                        field=f"retrievers.{name}.embedder.builtin",
                    )
                source, identity = build_builtin_embedder(spec, pairs, [p.text for p in suite.passages])
            else:
                local = config_path.parent / e.path
                source = str(local) if local.is_dir() else e.path
                identity = embedder_identity(source, e.revision)
            if identity not in encoders:
                encoders[identity] = load_embedder(source, trust_remote_code=e.trust_remote_code)
            dense = DenseRetriever(
                suite.passages,
                encoders[identity],
                encoder_identity=identity,
                index=r.index,
                hnsw_m=r.hnsw_m,
                nlist=r.nlist,
                nprobe=r.nprobe,
                batch_size=r.batch_size,
            )
            built[name] = dense
            info[name] = {
                "kind": "dense",
                "embedder": identity,
                "index": r.index,
                "index_key": dense.key,
                "index_status": "cached" if dense.cached else "built",
            }
    for name, r in config.retrievers.items():
        if isinstance(r, HybridConfig):
            built[name] = HybridRetriever([built[o] for o in r.of], rrf_k=r.rrf_k, depth=r.depth)
            info[name] = {"kind": "hybrid", "of": r.of, "rrf_k": r.rrf_k}
    timings["retrievers_s"] = round(time.time() - t0, 2)
    return built, info


@dataclass
class BaseModel:
    path: str  # a folder or a hub id
    identity: str  # what generation and adapter keys depend on
    info: dict  # what the manifest says about it
    spec: BaseModelSpec | None = None  # the built-in model's settings


def resolve_model(config: BenchConfig, timings: dict) -> BaseModel:
    m = config.model
    if m.builtin is not None:
        b = config.suite.builtin  # the pool's names avoid the built-in domain's; other suites use defaults
        spec = BaseModelSpec(
            seed=b.seed if b else config.seed,
            domain_scale=b.scale if b else BaseModelSpec.domain_scale,
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
        return BaseModel(str(path), f"builtin:{spec.key()}", info, spec)
    info = {"kind": "path", "path": m.path, "revision": m.revision, "status": "external"}
    return BaseModel(m.path, model_identity(m.path, m.revision), info)


def model_identity(name_or_path: str, revision: str | None) -> str:
    """A local folder is identified by the hash of its files' contents; a hub id by id and revision."""
    folder = Path(name_or_path)
    if folder.is_dir():
        return f"local:{folder_hash(folder)}"
    return f"hub:{name_or_path}@{revision or 'main'}"


def adapter_job(config: BenchConfig, suite: Suite, base: BaseModel, method: str) -> AdapterJob:
    hyper = config.judge.builtin if method == "judge" else getattr(config.training, method)
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


def resolve_judge_adapter(
    config: BenchConfig, config_path: Path, suite: Suite, base: BaseModel, timings: dict
) -> Adapter:
    """The built-in judge: a LoRA adapter on the base model trained (once, cached) to grade answers."""
    t0 = time.time()
    job = adapter_job(config, suite, base, "judge")
    if not job.rows:
        raise InputError(
            str(config_path),
            f"the suite {suite.name!r} has no preference pairs to train a built-in judge on; "
            "give judge.http or judge.hf",
            field="judge.builtin",
        )
    adapter = ensure_adapter(job)
    timings["judge_adapter_s"] = round(time.time() - t0, 2)
    return adapter
