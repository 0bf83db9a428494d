"""Retrievers: every one answers `search(queries, k) -> list[list[Hit]]`, best first."""

from retrievers.bm25 import BM25Retriever
from retrievers.dense import DenseRetriever
from retrievers.hybrid import HybridRetriever
from retrievers.types import Hit

__all__ = ["BM25Retriever", "DenseRetriever", "Hit", "HybridRetriever"]
