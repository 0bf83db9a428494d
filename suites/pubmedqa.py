"""PubMedQA (PQA-L): a yes / no / maybe question about a PubMed abstract.

The corpus is every abstract (its context sections joined, or chunked if the config says so); a
question's gold passages are its own abstract's. With `test_ids` (the official 500-question test
split) those questions are tested and the other 500 train: SFT pairs (question, decision),
preference pairs (the right decision against a wrong one), their abstracts for continued
pre-training, and (question, abstract) retrieval pairs. Its exact metrics are accuracy and
macro-F1 over the three labels.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import InputError
from retrievers.chunking import chunk_document
from suites.schema import Passage, PreferencePair, QAPair, Question, Suite, TrainingSets

LABELS = ("yes", "no", "maybe")
_WRONG = {"yes": "no", "no": "yes", "maybe": "yes"}


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(str(path), f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"not valid JSON: {e.msg}", line=e.lineno) from None


def load_pubmedqa(
    path: str | Path,
    *,
    test_ids: str | Path | None = None,
    limit: int | None = None,
    chunking: tuple[int, int] | None = None,
) -> Suite:
    path = Path(path)
    data = _read_json(path)
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
        records[str(pmid)] = r
    if test_ids is not None:
        truth = _read_json(Path(test_ids))
        if not isinstance(truth, dict):
            raise InputError(str(test_ids), "expected an object of PubMed id -> label", field="(top level)")
        unknown = [i for i in truth if i not in records]
        if unknown:
            raise InputError(str(test_ids), f"id {unknown[0]!r} is not in {path.name}", field=unknown[0])
        test = list(truth)
    else:
        test = list(records)
    test = test[:limit] if limit else test
    test_set = set(test)
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
    train = [pmid for pmid in records if pmid not in test_set] if test_ids is not None else []
    training = TrainingSets(
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
    return Suite(f"pubmedqa-{path.stem}", tuple(passages), questions, training)
