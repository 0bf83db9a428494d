"""Every retriever the config names, ready to search: BM25 built in memory, dense indexes and the
built-in embedder built only when missing from the cache."""

from __future__ import annotations

import time

from core.cache import model_identity
from core.errors import InputError
from harness.config import BM25Config, DenseConfig, HybridConfig
from suites.schema import Suite

AUTO_BM25S_FROM = 10_000  # passages; below it rank-bm25 answers a query in milliseconds anyway


def resolve_retrievers(config, suite: Suite, timings: dict) -> tuple[dict, dict]:
    """{name: retriever} for every retriever in the config, and what the manifest says of them."""
    from retrievers import BM25Retriever, DenseRetriever, HybridRetriever
    from retrievers.embedder import EmbedderSpec, build_builtin_embedder, load_embedder

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
                        config.source,
                        f"the suite {suite.name!r} has no retrieval training pairs for a built-in embedder; "
                        "give `embedder.path`",
                        field=f"retrievers.{name}.embedder.builtin",
                    )
                source, identity = build_builtin_embedder(spec, pairs, [p.text for p in suite.passages])
            else:
                source, identity = e.path, model_identity(e.path, e.revision)
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
