"""Retrievers: every one answers `search(queries, k) -> list[list[Hit]]`."""

from retrievers.bm25 import BM25Retriever
from retrievers.types import Hit

__all__ = ["BM25Retriever", "Hit"]
