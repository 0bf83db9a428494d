"""Chunking, BM25 (both backends against the formulas), dense retrieval with a cached FAISS index,
and reciprocal-rank fusion."""

import itertools
import math

import pytest

from retrievers import BM25Retriever, DenseRetriever, HybridRetriever
from retrievers.chunking import chunk_document, chunks_containing
from retrievers.hybrid import rrf
from retrievers.types import Hit
from suites.schema import Passage

TEXT = " ".join(f"w{i}" for i in range(23)) + "\n\n  tail   words here."  # 26 words, odd spacing


def test_chunks_keep_offsets_and_overlap():
    chunks = chunk_document("doc", TEXT, words=10, overlap=3)
    assert [len(c.text.split()) for c in chunks] == [10, 10, 10, 5]
    for c in chunks:
        assert TEXT[c.start : c.end] == c.text and c.source == "doc"
    for a, b in itertools.pairwise(chunks):
        assert a.text.split()[-3:] == b.text.split()[:3]  # 3 words shared
    assert chunks[-1].end == len(TEXT.rstrip())
    assert [c.id for c in chunk_document("d", "just four words here", words=10, overlap=3)] == ["d#0"]
    assert chunk_document("d", "   ", words=5, overlap=1) == []
    with pytest.raises(ValueError):
        chunk_document("d", TEXT, words=5, overlap=5)
    w10 = TEXT.index("w10")
    assert chunks_containing(chunks, "doc", w10, w10 + 3) == ["doc#1"]
    w8 = TEXT.index("w8")  # w7..w9 are in both chunk 0 and chunk 1
    assert chunks_containing(chunks, "doc", w8, w8 + 2) == ["doc#0", "doc#1"]


CORPUS = [
    "the cat sat on the mat",
    "a dog chased the cat",
    "birds fly over the sky sky",
    "the mat was red",
    "dogs and cats and birds",
]


def _okapi(query, docs, k1=1.5, b=0.75, eps=0.25):
    """rank-bm25's BM25Okapi by hand: idf = ln((N - n + .5) / (n + .5)), negatives floored at
    eps * mean idf, score = idf * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))."""
    toks = [d.split() for d in docs]
    n_docs, avg = len(toks), sum(map(len, toks)) / len(toks)
    vocab = {t for d in toks for t in d}
    idf = {
        t: math.log((n_docs - sum(t in d for d in toks) + 0.5) / (sum(t in d for d in toks) + 0.5))
        for t in vocab
    }
    floor = eps * sum(idf.values()) / len(idf)
    idf = {t: (v if v >= 0 else floor) for t, v in idf.items()}
    return [
        sum(
            idf.get(q, 0) * d.count(q) * (k1 + 1) / (d.count(q) + k1 * (1 - b + b * len(d) / avg))
            for q in query.split()
        )
        for d in toks
    ]


def _lucene(query, docs, k1=1.5, b=0.75):
    """Lucene's BM25 by hand (bm25s drops the constant k1 + 1): idf = ln(1 + (N - n + .5) / (n + .5))."""
    toks = [d.split() for d in docs]
    n_docs, avg = len(toks), sum(map(len, toks)) / len(toks)

    def idf(t):
        n = sum(t in d for d in toks)
        return math.log(1 + (n_docs - n + 0.5) / (n + 0.5))

    return [
        sum(idf(q) * d.count(q) / (d.count(q) + k1 * (1 - b + b * len(d) / avg)) for q in query.split())
        for d in toks
    ]


@pytest.mark.parametrize("query", ["cat", "the mat", "sky birds", "sky sky dog", "unknown words"])
def test_bm25_backends_equal_their_formulas(query):
    passages = [Passage(str(i), t) for i, t in enumerate(CORPUS)]
    okapi = BM25Retriever(passages, backend="rank-bm25").scores(query)
    lucene = BM25Retriever(passages, backend="bm25s").scores(query)
    assert list(okapi) == pytest.approx(_okapi(query, CORPUS))
    assert list(lucene) == pytest.approx(_lucene(query, CORPUS), rel=1e-5)


def test_bm25_ties_are_broken_by_corpus_order():
    passages = [Passage(f"p{i}", "same words here") for i in range(3)]
    passages += [Passage(f"o{i}", f"other text {i}") for i in range(5)]
    for backend in ("rank-bm25", "bm25s"):
        hits = BM25Retriever(passages, backend=backend).search(["same"], 2)[0]
        assert [h.passage_id for h in hits] == ["p0", "p1"] and hits[0].score == hits[1].score > 0


def test_rrf_by_hand():
    a = [Hit("x", 9), Hit("y", 8), Hit("z", 7)]
    b = [Hit("y", 0.9), Hit("w", 0.8)]
    fused = rrf([a, b], k=60)
    assert [h.passage_id for h in fused] == ["y", "x", "w", "z"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61) and fused[2].score == pytest.approx(1 / 62)


def test_dense_index_is_built_once_and_finds_what_it_learned(cache_dir):
    from retrievers.embedder import EmbedderSpec, build_builtin_embedder, load_embedder
    from suites.builtin import builtin_suite

    suite = builtin_suite(3, scale=4)
    spec = EmbedderSpec(hidden_size=32, layers=1, epochs=30, batch_size=16, vocab_size=512, seed=3)
    path, identity = build_builtin_embedder(
        spec, list(suite.training.retrieval), [p.text for p in suite.passages], progress=False
    )
    assert (
        build_builtin_embedder(spec, list(suite.training.retrieval), [p.text for p in suite.passages])[1]
        == identity
    )
    encoder = load_embedder(path)  # through SentenceTransformer(path), as a hub model
    first = DenseRetriever(suite.passages, encoder, encoder_identity=identity, progress=False)
    again = DenseRetriever(suite.passages, encoder, encoder_identity=identity, progress=False)
    assert not first.cached and again.cached and first.key == again.key
    queries = [q for q, _ in suite.training.retrieval]
    gold = {q: p for q, p in suite.training.retrieval}
    texts = {p.id: p.text for p in suite.passages}
    hits = first.search(queries, 3)
    assert all(h[0].score >= h[1].score >= h[2].score for h in hits)
    top1 = sum(texts[h[0].passage_id] == gold[q] for q, h in zip(queries, hits, strict=True)) / len(queries)
    assert top1 > 0.5  # chance is 1/21: it learned its training pairs
    hnsw = DenseRetriever(suite.passages, encoder, encoder_identity=identity, index="hnsw", progress=False)
    assert [h[0].passage_id for h in hnsw.search(queries, 1)] == [h[0].passage_id for h in hits]
    hybrid = HybridRetriever([BM25Retriever(suite.passages), first], depth=10)
    assert len(hybrid.search(queries[:2], 4)[0]) == 4
