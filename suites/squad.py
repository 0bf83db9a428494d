"""SQuAD v1.1-format JSON (COVID-QA): long documents cut into chunks, extractive questions.

`load_squad(path, ...)` returns a `Suite`. Every document is chunked (word windows with overlap);
a question's gold passages are the chunks that contain the first `answer_prefix_chars` characters
of one of its answers (by character offsets). The first `limit` answerable questions are the test
set; questions about *other* documents are training data (SFT pairs, retrieval pairs and their
documents for continued pre-training), so nothing a test question asks about is trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from core.errors import InputError
from retrievers.chunking import chunk_documents, chunks_containing
from suites.jsonl import read_json
from suites.schema import Passage, QAPair, Question, Suite, TrainingSets


def _field(obj: Any, key: str, kind: type | tuple[type, ...], where: str, name: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(name, f"missing field {key!r}", field=where)
    value = obj[key]
    if not isinstance(value, kind):
        raise InputError(
            name, f"expected {kind.__name__ if isinstance(kind, type) else 'a value'}", field=f"{where}.{key}"
        )
    return value


class _Asked(NamedTuple):
    """An answerable question as the file gives it."""

    doc_id: str
    qid: str
    text: str
    spans: list[tuple[str, int]]  # each answer's text and where it starts in its document


def _locate(context: str, text: str, start: int) -> int | None:
    """Where `text` is in `context`: at `start` if it is there, else its occurrence nearest to
    `start`. Real files are off by a character or two (COVID-QA: 106 of 878 answers carry a leading
    space and an offset one short)."""
    if context[start : start + len(text)] == text:
        return start
    found, i = [], context.find(text)
    while i >= 0:
        found.append(i)
        i = context.find(text, i + 1)
    return min(found, key=lambda j: abs(j - start)) if found and text else None


def load_squad(
    path: str | Path,
    *,
    words: int = 100,
    overlap: int = 20,
    limit: int | None = None,
    answer_prefix_chars: int = 60,
) -> Suite:
    path = Path(path)
    docs, asked = _read(read_json(path), str(path))
    chunks = chunk_documents(docs, words=words, overlap=overlap)
    by_doc: dict[str, list[Passage]] = {}
    for c in chunks:
        by_doc.setdefault(c.source, []).append(c)

    def gold(q: _Asked, a_text: str, start: int) -> list[str]:
        """The chunks holding the first `answer_prefix_chars` characters of an answer."""
        end = start + min(len(a_text), answer_prefix_chars)
        return chunks_containing(by_doc[q.doc_id], q.doc_id, start, end)

    test = asked[:limit] if limit else asked
    test_docs = {q.doc_id for q in test}
    questions = []
    for q in test:
        ids = list(dict.fromkeys(cid for a_text, start in q.spans for cid in gold(q, a_text, start)))
        answers = tuple(dict.fromkeys(a for a, _ in q.spans))
        questions.append(Question(f"q-{q.qid}", q.text, answers, tuple(ids)))
    passage_text = {c.id: c.text for c in chunks}
    retrieval, sft = [], []
    for q in asked:
        if q.doc_id in test_docs:
            continue
        a_text, start = q.spans[0]
        ids = gold(q, a_text, start)
        if ids:
            retrieval.append((q.text, passage_text[ids[0]]))
        sft.append(QAPair(q.text, a_text, fact_id=q.qid, passage_ids=tuple(ids)))  # RAFT reads passage_ids
    training = TrainingSets(
        sft=tuple(sft),
        documents=tuple(ctx for d, ctx in docs if d not in test_docs),
        retrieval=tuple(retrieval),
    )
    return Suite(f"squad-{path.stem}", tuple(chunks), tuple(questions), training)


def _read(data: Any, name: str) -> tuple[list[tuple[str, str]], list[_Asked]]:
    """The documents (id, text) and the answerable questions of a SQuAD-format file, checked."""
    docs: list[tuple[str, str]] = []
    asked: list[_Asked] = []
    seen_docs: set[str] = set()
    seen_q: set[str] = set()
    for i, entry in enumerate(_field(data, "data", list, "(top level)", name)):
        for j, para in enumerate(_field(entry, "paragraphs", list, f"data.{i}", name)):
            where = f"data.{i}.paragraphs.{j}"
            context = _field(para, "context", str, where, name)
            doc_id = str(para.get("document_id", f"{i}-{j}"))
            if doc_id in seen_docs:
                raise InputError(name, f"duplicate document_id {doc_id!r}", field=f"{where}.document_id")
            seen_docs.add(doc_id)
            docs.append((doc_id, context))
            for k, qa in enumerate(_field(para, "qas", list, where, name)):
                if (q := _question(qa, doc_id, context, f"{where}.qas.{k}", name, seen_q)) is not None:
                    asked.append(q)
    return docs, asked


def _question(qa: Any, doc_id: str, context: str, where: str, name: str, seen: set[str]) -> _Asked | None:
    """One question, checked; None when it is unanswerable (or has no answer)."""
    text = _field(qa, "question", str, where, name).strip()
    qid = str(_field(qa, "id", (str, int), where, name))
    if not text:
        raise InputError(name, "empty question", field=f"{where}.question")
    if qid in seen:
        raise InputError(name, f"duplicate question id {qid!r}", field=f"{where}.id")
    seen.add(qid)
    if qa.get("is_impossible"):
        return None
    spans = []
    for a_i, a in enumerate(_field(qa, "answers", list, where, name)):
        awhere = f"{where}.answers.{a_i}"
        a_text = _field(a, "text", str, awhere, name)
        start = _field(a, "answer_start", int, awhere, name)
        located = _locate(context, a_text.strip(), start)
        if located is None:
            raise InputError(name, "answer text does not occur in the context", field=awhere)
        spans.append((a_text.strip(), located))
    return _Asked(doc_id, qid, text, spans) if spans else None
