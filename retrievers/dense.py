"""Dense retrieval: a sentence-transformers encoder and a FAISS index over normalised embeddings
(inner product = cosine). Flat (exact) by default; HNSW or IVF for large corpora. On a GPU the
index moves to it when FAISS was built with GPU support (the `faiss-gpu` extra).

The index is cached under a key of the corpus, the embedder's identity and the index settings,
and built only when missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.cache import build_once, cache_root, digest
from retrievers.types import Hit
from suites.schema import Passage, corpus_digest

if TYPE_CHECKING:  # faiss and sentence-transformers load only when a dense retriever is built
    import faiss
    from sentence_transformers import SentenceTransformer

INDEX_KINDS = ("flat", "hnsw", "ivf")


def _new_index(kind: str, dim: int, n: int, *, hnsw_m: int, nlist: int) -> faiss.Index:
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        return faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
    if kind == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        return faiss.IndexIVFFlat(
            quantizer, dim, max(1, min(nlist, n // 39 or 1)), faiss.METRIC_INNER_PRODUCT
        )
    raise ValueError(f"unknown index kind {kind!r} (one of {INDEX_KINDS})")


def on_gpu(index: faiss.Index) -> faiss.Index:
    """The index on the GPU when FAISS has GPU support and a GPU is present, else unchanged."""
    import faiss

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


class DenseRetriever:
    """`search(queries, k)`: top-k passages by cosine similarity of their embeddings, best first."""

    name = "dense"

    def __init__(
        self,
        passages: Sequence[Passage],
        encoder: SentenceTransformer,
        *,
        encoder_identity: str,
        index: str = "flat",
        hnsw_m: int = 32,
        nlist: int = 256,
        nprobe: int = 16,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        import faiss

        self.encoder, self.batch_size = encoder, batch_size
        self.ids = [p.id for p in passages]
        settings = {"index": index, "hnsw_m": hnsw_m, "nlist": nlist}
        self.key = digest({"corpus": corpus_digest(passages), "encoder": encoder_identity, **settings})
        path = cache_root() / "indexes" / f"dense-{self.key}"

        def build(tmp: Path) -> None:
            vectors = self._encode([p.text for p in passages], progress=progress)
            built = _new_index(index, vectors.shape[1], len(vectors), hnsw_m=hnsw_m, nlist=nlist)
            if not built.is_trained:
                built.train(vectors)
            built.add(vectors)
            faiss.write_index(built, str(tmp / "index.faiss"))
            (tmp / "ids.json").write_text(json.dumps(self.ids))

        # one run builds it, another sharing the cache waits for it (build_once)
        self.cached = not build_once(path, build, what=f"the dense index {path.name}")
        stored = json.loads((path / "ids.json").read_text())
        if stored != self.ids:  # the key covers the corpus, so this means a corrupted cache entry
            raise RuntimeError(f"{path}: cached index does not match the corpus; delete it")
        cpu_index = faiss.read_index(str(path / "index.faiss"))
        if index == "ivf":
            cpu_index.nprobe = nprobe  # type: ignore[attr-defined]  # read_index returns an IVF index here
        self.index = on_gpu(cpu_index)
        self.path = Path(path)

    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        vectors = self.encoder.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        scores, idx = self.index.search(self._encode(list(queries)), min(k, len(self.ids)))
        return [
            [Hit(self.ids[i], float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(scores, idx, strict=True)
        ]
