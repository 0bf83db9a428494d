"""Every retriever the config names, ready to search: BM25 built in memory, dense indexes and the
built-in embedder built only when missing from the cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cache import model_identity
from core.errors import InputError
from harness.config import BenchConfig, BM25Config, DenseConfig, EmbedderConfig, HybridConfig
from suites.schema import Suite

if TYPE_CHECKING:  # the retrievers' libraries load only when one is built
    from sentence_transformers import SentenceTransformer

    from retrievers import BM25Retriever, DenseRetriever
    from retrievers.types import Retriever

AUTO_BM25S_FROM = 10_000  # passages; below it rank-bm25 answers a query in milliseconds anyway


def resolve_retrievers(
    config: BenchConfig, suite: Suite, timings: dict[str, float]
) -> tuple[dict[str, Retriever], dict[str, dict[str, Any]]]:
    """{name: retriever} for every retriever in the config, and what the manifest says of them."""
    from retrievers import HybridRetriever

    t0 = time.time()
    built: dict[str, Retriever] = {}
    info: dict[str, dict[str, Any]] = {}
    encoders: dict[str, SentenceTransformer] = {}  # by identity: dense retrievers share an embedder
    for name, r in config.retrievers.items():
        if isinstance(r, BM25Config):
            built[name], info[name] = _bm25(r, suite)
        elif isinstance(r, DenseConfig):
            built[name], info[name] = _dense(config, name, r, suite, encoders)
    for name, r in config.retrievers.items():  # a hybrid fuses retrievers built above
        if isinstance(r, HybridConfig):
            built[name] = HybridRetriever([built[o] for o in r.of], rrf_k=r.rrf_k, depth=r.depth)
            info[name] = {"kind": "hybrid", "of": r.of, "rrf_k": r.rrf_k}
    timings["retrievers_s"] = round(time.time() - t0, 2)
    return built, info


def _bm25(r: BM25Config, suite: Suite) -> tuple[BM25Retriever, dict[str, Any]]:
    from retrievers import BM25Retriever

    backend = r.backend
    if backend == "auto":
        backend = "rank-bm25" if len(suite.passages) < AUTO_BM25S_FROM else "bm25s"
    retriever = BM25Retriever(suite.passages, k1=r.k1, b=r.b, backend=backend)
    return retriever, {"kind": "bm25", "backend": backend}


def _dense(
    config: BenchConfig, name: str, r: DenseConfig, suite: Suite, encoders: dict[str, SentenceTransformer]
) -> tuple[DenseRetriever, dict[str, Any]]:
    """A dense retriever over the suite's passages: its index built when missing from the cache, its
    embedder loaded once per identity (into `encoders`)."""
    from retrievers import DenseRetriever
    from retrievers.embedder import load_embedder

    e = r.embedder
    source, identity = _embedder_source(config, name, e, suite)
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
    return dense, {
        "kind": "dense",
        "embedder": identity,
        "index": r.index,
        "index_key": dense.key,
        "index_status": "cached" if dense.cached else "built",
    }


def _embedder_source(
    config: BenchConfig, name: str, e: EmbedderConfig, suite: Suite
) -> tuple[str | Path, str]:
    """(where to load the embedder from, its identity): the built-in one, trained on the suite's
    retrieval pairs when missing from the cache, or a hub id or folder."""
    from retrievers.embedder import EmbedderSpec, build_builtin_embedder

    if e.builtin is None:
        assert e.path is not None  # EmbedderConfig holds exactly one of builtin and path
        return e.path, model_identity(e.path, e.revision)
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
    return build_builtin_embedder(spec, pairs, [p.text for p in suite.passages])
