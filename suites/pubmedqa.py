"""PubMedQA (PQA-L): a yes / no / maybe question about a PubMed abstract.

The corpus is every abstract (its context sections joined, or chunked if the config says so); a
question's gold passages are its own abstract's. With `test_ids` (the official 500-question test
split) those questions are tested and the other 500 train: SFT pairs (question, decision),
preference pairs (the right decision against a wrong one), their abstracts for continued
pre-training, and (question, abstract) retrieval pairs. Its exact metrics are accuracy and
macro-F1 over the three labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import InputError
from retrievers.chunking import chunk_document
from suites.jsonl import read_json
from suites.schema import Passage, PreferencePair, QAPair, Question, Suite, TrainingSets

LABELS = ("yes", "no", "maybe")
_WRONG = {"yes": "no", "no": "yes", "maybe": "yes"}


def load_pubmedqa(
    path: str | Path,
    *,
    test_ids: str | Path | None = None,
    limit: int | None = None,
    chunking: tuple[int, int] | None = None,
) -> Suite:
    path = Path(path)
    records = _records(read_json(path), path)
    test = _test_ids(Path(test_ids), records, path) if test_ids is not None else list(records)
    test = test[:limit] if limit else test
    passages, by_pmid = _passages(records, chunking)
    questions = tuple(
        Question(
            f"q-{pmid}",
            records[pmid]["QUESTION"].strip(),
            (records[pmid]["final_decision"],),
            tuple(by_pmid[pmid]),
            category=records[pmid]["final_decision"],
        )
        for pmid in test
    )
    test_set = set(test)
    train = [pmid for pmid in records if pmid not in test_set] if test_ids is not None else []
    return Suite(f"pubmedqa-{path.stem}", tuple(passages), questions, _training(records, train))


def _records(data: Any, path: Path) -> dict[str, dict]:
    """PubMed id -> record, each with its question, contexts and a decision among `LABELS`."""
    if not isinstance(data, dict):
        raise InputError(str(path), "expected an object of PubMed id -> record", field="(top level)")
    records = {}
    for pmid, r in data.items():
        for key, kind in (("QUESTION", str), ("CONTEXTS", list), ("final_decision", str)):
            if not isinstance(r, dict) or key not in r:
                raise InputError(str(path), f"missing field {key!r}", field=pmid)
            if not isinstance(r[key], kind):
                raise InputError(str(path), f"expected {kind.__name__}", field=f"{pmid}.{key}")
        if r["final_decision"] not in LABELS:
            raise InputError(
                str(path), f"final_decision must be one of {LABELS}", field=f"{pmid}.final_decision"
            )
        if not r["QUESTION"].strip():
            raise InputError(str(path), "empty question", field=f"{pmid}.QUESTION")
        for i, context in enumerate(r["CONTEXTS"]):
            if not isinstance(context, str):
                raise InputError(str(path), "expected str", field=f"{pmid}.CONTEXTS.{i}")
        records[str(pmid)] = r
    return records


def _test_ids(test_ids: Path, records: dict[str, dict], path: Path) -> list[str]:
    """The tested ids, in the order of the ground-truth file, every one a record."""
    truth = read_json(test_ids)
    if not isinstance(truth, dict):
        raise InputError(str(test_ids), "expected an object of PubMed id -> label", field="(top level)")
    unknown = [i for i in truth if i not in records]
    if unknown:
        raise InputError(str(test_ids), f"id {unknown[0]!r} is not in {path.name}", field=unknown[0])
    return list(truth)


def _passages(
    records: dict[str, dict], chunking: tuple[int, int] | None
) -> tuple[list[Passage], dict[str, list[str]]]:
    """Every abstract as one passage, or chunked; and each record's passage ids."""
    passages: list[Passage] = []
    by_pmid: dict[str, list[str]] = {}
    for pmid, r in records.items():
        text = " ".join(c.strip() for c in r["CONTEXTS"])
        chunks = (
            chunk_document(f"pmid-{pmid}", text, words=chunking[0], overlap=chunking[1])
            if chunking
            else [Passage(f"pmid-{pmid}", text, source=pmid)]
        )
        passages += chunks
        by_pmid[pmid] = [c.id for c in chunks]
    return passages, by_pmid


def _training(records: dict[str, dict], train: list[str]) -> TrainingSets:
    """SFT pairs (question, decision), preference pairs (against a wrong decision), the abstracts and
    (question, abstract) retrieval pairs of the training records."""
    return TrainingSets(
        sft=tuple(
            QAPair(records[p]["QUESTION"].strip(), records[p]["final_decision"], fact_id=p) for p in train
        ),
        preferences=tuple(
            PreferencePair(
                records[p]["QUESTION"].strip(),
                records[p]["final_decision"],
                _WRONG[records[p]["final_decision"]],
                fact_id=p,
            )
            for p in train
        ),
        documents=tuple(" ".join(records[p]["CONTEXTS"]) for p in train),
        retrieval=tuple((records[p]["QUESTION"].strip(), " ".join(records[p]["CONTEXTS"])) for p in train),
    )
