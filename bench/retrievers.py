"""Retriever speed: index build time and queries/s for each retriever at about 3,500 and 35,000
chunks, with the ratio to rank-bm25 measured in the same run.

    .venv/bin/python bench/retrievers.py [--queries 200] [--copies 11]

Corpus: COVID-QA from ../shared/data (all 70 papers, 100-word chunks with 20-word overlap: 3,213
chunks), then the same chunks `--copies` times (ids suffixed) for the large size. Queries: its
first questions. Dense build time includes encoding every chunk. The dense retriever uses the built-in embedder (a 2-layer BERT, 64 wide) trained
for one epoch: speed does not depend on how well it was trained. Without ../shared/data it says so
and exits 0.

Measured here (2 CPU cores), 200 queries, top 10:
     chunks retriever          build s  queries/s  x rank-bm25
       3213 rank-bm25             0.31       84.2         1.0x
       3213 bm25s                 0.38     5287.0        62.8x
       3213 dense-flat            6.39     2327.1        27.6x
       3213 dense-hnsw            6.44     1792.5        21.3x
       3213 hybrid(bm25s+flat)    0.00      829.8         9.9x
      35343 rank-bm25             3.13        6.0         1.0x
      35343 bm25s                 4.54     1374.5       229.9x
      35343 dense-flat           66.15     1285.9       215.1x
      35343 dense-hnsw           82.55     2658.9       444.7x
      35343 hybrid(bm25s+flat)    0.00      505.3        84.5x
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "covidqa" / "covidqa.json"


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--copies", type=int, default=11)
    args = ap.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (see ../shared/data/README.md)")
        return
    os.environ.setdefault("RAGVFT_CACHE", tempfile.mkdtemp(prefix="ragvft-bench-"))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from dataclasses import replace
    from functools import partial

    from retrievers import BM25Retriever, DenseRetriever, HybridRetriever
    from retrievers.embedder import EmbedderSpec, build_builtin_embedder, load_embedder
    from retrievers.types import Retriever
    from suites.squad import load_squad

    suite = load_squad(DATA)
    queries = [q.text for q in suite.questions[: args.queries]]
    base = list(suite.passages)
    path, identity = build_builtin_embedder(
        EmbedderSpec(epochs=1.0),
        list(suite.training.retrieval or [(q.text, base[0].text) for q in suite.questions]),
        [p.text for p in base],
        progress=False,
    )
    encoder = load_embedder(path)
    print(f"queries: {len(queries)}; torch threads: {__import__('torch').get_num_threads()}")
    print(f"{'chunks':>7} {'retriever':<14} {'build s':>8} {'queries/s':>10} {'x rank-bm25':>12}")
    for copies in (1, args.copies):
        corpus = base if copies == 1 else [replace(p, id=f"{p.id}~{c}") for c in range(copies) for p in base]
        rows: list[tuple[str, Retriever, float]] = []
        bm25, b_s = timed(partial(BM25Retriever, corpus))
        rows.append(("rank-bm25", bm25, b_s))
        fast, f_s = timed(partial(BM25Retriever, corpus, backend="bm25s"))
        rows.append(("bm25s", fast, f_s))
        for kind in ("flat", "hnsw"):
            dense, d_s = timed(
                partial(
                    DenseRetriever, corpus, encoder, encoder_identity=identity, index=kind, progress=False
                )
            )
            rows.append((f"dense-{kind}", dense, d_s))
        rows.append(("hybrid(bm25s+flat)", HybridRetriever([fast, rows[2][1]]), 0.0))
        reference = None
        for name, r, build_s in rows:
            _, s = timed(partial(r.search, queries, 10))
            qps = len(queries) / s
            reference = reference or qps
            print(f"{len(corpus):>7} {name:<18} {build_s:>8.2f} {qps:>10.1f} {qps / reference:>11.1f}x")


if __name__ == "__main__":
    main()
