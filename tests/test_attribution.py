"""Knowledge attribution: a retrieval variant's right answers split by whether its closed-book twin
(same adapter, no retriever) also knew them, and its wrong answers counted where the twin was right;
in summary.json (and the report: tests/test_bench.py)."""

from harness.config import load_config
from reports.attribution import knowledge_attribution
from tests.conftest import BASE, RAG, micro, write_config

CONFIG = micro(
    variants=[
        BASE,
        RAG,
        {"name": "sft", "adapter": "sft"},
        {"name": "sft+rag", "adapter": "sft", "retriever": "bm25", "k": 1},
        {"name": "dpo+rag", "adapter": "dpo", "retriever": "bm25", "k": 1},  # no closed-book dpo: no twin
    ]
)


def _rows(variant: str, right: dict[str, int], seed=None) -> list[dict]:
    return [
        {
            "variant": variant,
            "question_id": q,
            "slice": "trained" if q.startswith("t") else "corpus_only",
            "scores": {"em": {"value": float(v)}, "f1": {"value": 0.5}},
            "seed": seed,
        }
        for q, v in right.items()
    ]


def test_right_answers_split_by_memory_and_context_and_wrong_ones_by_misled(tmp_path):
    config = load_config(write_config(tmp_path, CONFIG))
    rows = (
        _rows("base", {"t1": 0, "t2": 0, "c1": 0, "c2": 0})
        + _rows("rag", {"t1": 1, "t2": 0, "c1": 1, "c2": 1})
        + _rows("sft", {"t1": 1, "t2": 1, "c1": 0, "c2": 1})
        + _rows("sft+rag", {"t1": 1, "t2": 0, "c1": 1, "c2": 0}, seed=7)
        + _rows("sft+rag", {"t1": 0, "t2": 1, "c1": 0, "c2": 1}, seed=8)  # a second seed: not counted
        + _rows("dpo+rag", {"t1": 1, "t2": 1, "c1": 1, "c2": 1})
    )
    at = knowledge_attribution(rows, config)
    assert set(at) == {"rag", "sft+rag"}  # dpo+rag has no closed-book twin in the run
    rag = at["rag"]
    assert (rag["closed_book"], rag["metric"], rag["n"]) == ("base", "em", 4)
    assert (rag["right"], rag["from_memory"], rag["from_context"], rag["wrong"], rag["misled"]) == (
        3,
        0,
        3,
        1,
        0,
    )
    sft = at["sft+rag"]
    assert sft["closed_book"] == "sft"
    # t1 right from memory, c1 right from context; t2 and c2 wrong where sft was right: misled
    assert (sft["right"], sft["from_memory"], sft["from_context"], sft["wrong"], sft["misled"]) == (
        2,
        1,
        1,
        2,
        2,
    )
    assert sft["by_slice"]["trained"] == {
        "right": 1,
        "from_memory": 1,
        "from_context": 0,
        "wrong": 1,
        "misled": 1,
        "n": 2,
    }
    assert sft["by_slice"]["corpus_only"]["from_context"] == 1


def test_no_exact_metric_no_attribution(tmp_path):
    config = load_config(write_config(tmp_path, CONFIG, metrics=["f1"]))
    assert knowledge_attribution(_rows("rag", {"t1": 1}) + _rows("base", {"t1": 0}), config) == {}
