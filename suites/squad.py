"""SQuAD v1.1-format JSON (COVID-QA): long documents cut into chunks, extractive questions.

`load_squad(path, ...)` returns a `Suite`. Every document is chunked (word windows with overlap);
a question's gold passages are the chunks that contain the first `answer_prefix_chars` characters
of one of its answers (by character offsets). The first `limit` answerable questions are the test
set; questions about *other* documents are training data (SFT pairs, retrieval pairs and their
documents for continued pre-training), so nothing a test question asks about is trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import InputError
from retrievers.chunking import chunk_documents, chunks_containing
from suites.schema import QAPair, Question, Suite, TrainingSets


def _field(obj, key, kind, where: str, name: str):
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(name, f"missing field {key!r}", field=where)
    value = obj[key]
    if not isinstance(value, kind):
        raise InputError(
            name, f"expected {kind.__name__ if isinstance(kind, type) else 'a value'}", field=f"{where}.{key}"
        )
    return value


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
    name = str(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(name, f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise InputError(name, f"not valid JSON: {e.msg}", line=e.lineno) from None
    entries = _field(data, "data", list, "(top level)", name)
    docs: list[tuple[str, str]] = []
    raw_questions = []  # (doc_id, qid, question, [(text, start)])
    seen_docs: set[str] = set()
    seen_q: set[str] = set()
    for i, entry in enumerate(entries):
        for j, para in enumerate(_field(entry, "paragraphs", list, f"data.{i}", name)):
            where = f"data.{i}.paragraphs.{j}"
            context = _field(para, "context", str, where, name)
            doc_id = str(para.get("document_id", f"{i}-{j}"))
            if doc_id in seen_docs:
                raise InputError(name, f"duplicate document_id {doc_id!r}", field=f"{where}.document_id")
            seen_docs.add(doc_id)
            docs.append((doc_id, context))
            for k, qa in enumerate(_field(para, "qas", list, where, name)):
                qwhere = f"{where}.qas.{k}"
                text = _field(qa, "question", str, qwhere, name).strip()
                qid = str(_field(qa, "id", (str, int), qwhere, name))
                if not text:
                    raise InputError(name, "empty question", field=f"{qwhere}.question")
                if qid in seen_q:
                    raise InputError(name, f"duplicate question id {qid!r}", field=f"{qwhere}.id")
                seen_q.add(qid)
                if qa.get("is_impossible"):
                    continue
                spans = []
                for a_i, a in enumerate(_field(qa, "answers", list, qwhere, name)):
                    awhere = f"{qwhere}.answers.{a_i}"
                    a_text = _field(a, "text", str, awhere, name)
                    start = _field(a, "answer_start", int, awhere, name)
                    located = _locate(context, a_text.strip(), start)
                    if located is None:
                        raise InputError(name, "answer text does not occur in the context", field=awhere)
                    spans.append((a_text.strip(), located))
                if spans:
                    raw_questions.append((doc_id, qid, text, spans))
    chunks = chunk_documents(docs, words=words, overlap=overlap)
    by_doc: dict[str, list] = {}
    for c in chunks:
        by_doc.setdefault(c.source, []).append(c)
    test = raw_questions[:limit] if limit else raw_questions
    test_docs = {d for d, *_ in test}
    questions = []
    for doc_id, qid, text, spans in test:
        gold: list[str] = []
        for a_text, start in spans:
            for cid in chunks_containing(
                by_doc[doc_id], doc_id, start, start + min(len(a_text), answer_prefix_chars)
            ):
                if cid not in gold:
                    gold.append(cid)
        answers = tuple(dict.fromkeys(a for a, _ in spans))
        questions.append(Question(f"q-{qid}", text, answers, tuple(gold)))
    train = [q for q in raw_questions if q[0] not in test_docs]
    passage_text = {c.id: c.text for c in chunks}
    retrieval, sft = [], []
    for doc_id, qid, text, spans in train:
        a_text, start = spans[0]
        ids = chunks_containing(by_doc[doc_id], doc_id, start, start + min(len(a_text), answer_prefix_chars))
        if ids:
            retrieval.append((text, passage_text[ids[0]]))
        sft.append(QAPair(text, a_text, fact_id=qid, passage_ids=tuple(ids)))  # RAFT reads passage_ids
    training = TrainingSets(
        sft=tuple(sft),
        documents=tuple(ctx for d, ctx in docs if d not in test_docs),
        retrieval=tuple(retrieval),
    )
    return Suite(f"squad-{path.stem}", tuple(chunks), tuple(questions), training)
