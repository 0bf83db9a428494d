"""Cut long documents into overlapping windows of words, keeping where each window came from.

A chunk is a `Passage` whose `source` is its document's id and whose `[start, end)` are character
offsets into that document, so a gold answer span can be mapped to the chunks that contain it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from suites.schema import Passage

_WORD = re.compile(r"\S+")


def chunk_document(doc_id: str, text: str, *, words: int = 100, overlap: int = 20) -> list[Passage]:
    """Windows of `words` words, each starting `words - overlap` words after the previous one.

    The last window ends at the document's end; a document shorter than one window is one chunk.
    """
    if words < 1 or not 0 <= overlap < words:
        raise ValueError(f"need words >= 1 and 0 <= overlap < words (got {words}, {overlap})")
    spans = [m.span() for m in _WORD.finditer(text)]
    if not spans:
        return []
    step = words - overlap
    chunks = []
    for n, first in enumerate(range(0, len(spans), step)):
        last = min(first + words, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(Passage(f"{doc_id}#{n}", text[start:end], source=doc_id, start=start, end=end))
        if last == len(spans) - 1:
            break
    return chunks


def chunk_documents(docs: Iterable[tuple[str, str]], *, words: int = 100, overlap: int = 20) -> list[Passage]:
    return [c for doc_id, text in docs for c in chunk_document(doc_id, text, words=words, overlap=overlap)]


def chunks_containing(chunks: Iterable[Passage], doc_id: str, start: int, end: int) -> list[str]:
    """Ids of the chunks of `doc_id` whose span covers the character span `[start, end)`."""
    return [
        c.id
        for c in chunks
        if c.source == doc_id
        and c.start is not None
        and c.end is not None
        and c.start <= start
        and end <= c.end
    ]
