"""The bad-input catalogue, through the command line: every malformed input ends with one line
naming the file (and the line and field where there is one), exit code 2, no traceback, and no
run written. (Config typos are also covered line by line in test_config_errors.py.)"""

import json

import pytest

from tests.conftest import BASE, DROP, RAG, assert_input_error, cli_bench

LONG = "x" * (1 << 20)
EXTRA_SFT = {  # training.extra_sft: a JSONL file of {"question", "answer"}
    "invalid JSON line": (
        b'{"question": "a?", "answer": "b"}\n{"question": "c?", answer}\n',
        ":2:",
        "invalid JSON",
    ),
    "missing field": (b'{"question": "a?"}\n', ":1: answer:", "missing field"),
    "wrong type": (b'{"question": "a?", "answer": 3}\n', ":1: answer:", "expected str, got int"),
    "empty question": (b'{"question": "  ", "answer": "b"}\n', ":1: question:", "empty"),
    "non-UTF-8 bytes": (b'{"question": "caf\xe9?", "answer": "b"}\n', ":1:", "not UTF-8"),
    "oversized row": (('{"question": "' + LONG + '", "answer": "b"}\n').encode(), ":1:", "limit 1,048,576"),
    "not an object": (b'["a?", "b"]\n', ":1:", "expected a JSON object"),
}
SQUAD = {
    "duplicate question id": (
        {
            "data": [
                {
                    "paragraphs": [
                        {
                            "context": "a b",
                            "document_id": "d",
                            "qas": [
                                {"id": 1, "question": "q?", "answers": [{"text": "a", "answer_start": 0}]},
                                {"id": 1, "question": "r?", "answers": [{"text": "b", "answer_start": 2}]},
                            ],
                        }
                    ]
                }
            ]
        },
        "data.0.paragraphs.0.qas.1.id",
        "duplicate question id",
    ),
    "duplicate document id": (
        {
            "data": [
                {
                    "paragraphs": [
                        {"context": "a", "document_id": "d", "qas": []},
                        {"context": "b", "document_id": "d", "qas": []},
                    ]
                }
            ]
        },
        "data.0.paragraphs.1.document_id",
        "duplicate document_id",
    ),
}
CONFIG = {  # overrides of the micro config
    "unknown retriever kind": (
        {"retrievers": {"bm25": {"kind": "bm52"}}},
        "retrievers.bm25",
        "'bm25', 'dense', 'hybrid'",
    ),
    "hybrid of an unknown retriever": (
        {"retrievers": {"mix": {"kind": "hybrid", "of": ["bm25", "dnese"]}}},
        "retrievers.mix.of.1",
        "'dnese' is not a bm25 or dense retriever",
    ),
    "bad chunking": (
        {"suite": {"chunking": {"words": 5, "overlap": 5}}},
        "suite.chunking",
        "overlap must be smaller",
    ),
    "two suite sources": ({"suite": {"squad": {"path": "x.json"}}}, "suite", "exactly one suite source"),
    "missing suite file": (
        {"suite": {"builtin": DROP, "squad": {"path": "nowhere.json"}}},
        "nowhere.json",
        "file not found",
    ),
    "gate on an unknown variant": (
        {"gate": {"rules": [{"variant": "rga", "metric": "em", "margin": 0.1}]}},
        "gate.rules.0.variant",
        "unknown variant",
    ),
    "gate rule with no check": (
        {"gate": {"rules": [{"variant": "rag", "metric": "em"}]}},
        "gate.rules.0",
        "give 'margin', 'floor' or both",
    ),
    "gate on macro_f1": (
        {"gate": {"rules": [{"variant": "rag", "metric": "macro_f1", "margin": 0.1}]}},
        "gate.rules.0.metric",
        "corpus-level score",
    ),
}
JSONL_SUITE = {"builtin": DROP, "jsonl": {"corpus": "corpus.jsonl", "questions": "questions.jsonl"}}


@pytest.mark.parametrize("case", EXTRA_SFT)
def test_training_jsonl(tmp_path, cache_dir, case):
    content, where, message = EXTRA_SFT[case]
    (tmp_path / "extra.jsonl").write_bytes(content)
    result = cli_bench(tmp_path, training={"extra_sft": "extra.jsonl"})
    assert_input_error(result, f"extra.jsonl{where}", message, no_run_in=tmp_path)


@pytest.mark.parametrize("case", SQUAD)
def test_squad_file(tmp_path, cache_dir, case):
    data, field, message = SQUAD[case]
    (tmp_path / "s.json").write_text(json.dumps(data))
    result = cli_bench(tmp_path, suite={"builtin": DROP, "squad": {"path": "s.json"}})
    assert_input_error(result, "s.json", field, message, no_run_in=tmp_path)


@pytest.mark.parametrize("case", CONFIG)
def test_config(tmp_path, cache_dir, case):
    overrides, field, message = CONFIG[case]
    assert_input_error(cli_bench(tmp_path, **overrides), field, message, no_run_in=tmp_path)


CORPUS = b'{"id": "p1", "text": "The sky is blue."}\n{"id": "p2", "text": "Grass is green."}\n'
QUESTIONS = {  # suite: {jsonl: {corpus, questions}}
    "gold passage id not in the corpus": (
        b'{"id": "q1", "question": "Sky?", "answers": ["blue"], "gold_passage_ids": ["p9"]}\n',
        "questions.jsonl:1: gold_passage_ids:",
        "'p9' is not in corpus.jsonl",
    ),
    "duplicate question id": (
        b'{"id": "q1", "question": "Sky?", "answers": ["blue"]}\n{"id": "q1", "question": "Grass?", "answers": ["green"]}\n',
        "questions.jsonl:2: id:",
        "duplicate id 'q1'",
    ),
    "no answers": (
        b'{"id": "q1", "question": "Sky?", "answers": []}\n',
        "questions.jsonl:1: answers:",
        "non-empty list",
    ),
    "answers not a list": (
        b'{"id": "q1", "question": "Sky?", "answers": "blue"}\n',
        "questions.jsonl:1: answers:",
        "expected list",
    ),
    "empty suite": (b"\n\n", "questions.jsonl", "the suite is empty"),
}


@pytest.mark.parametrize("case", QUESTIONS)
def test_jsonl_suite(tmp_path, cache_dir, case):
    content, where, message = QUESTIONS[case]
    (tmp_path / "corpus.jsonl").write_bytes(CORPUS)
    (tmp_path / "questions.jsonl").write_bytes(content)
    assert_input_error(cli_bench(tmp_path, suite=JSONL_SUITE), where, message, no_run_in=tmp_path)


def test_a_good_jsonl_suite_runs(tmp_path, cache_dir):
    (tmp_path / "corpus.jsonl").write_bytes(CORPUS)
    (tmp_path / "questions.jsonl").write_text(
        '{"id": "q1", "question": "What colour is the sky?", "answers": ["blue"], "gold_passage_ids": ["p1"]}\n'
    )
    result = cli_bench(tmp_path, suite=JSONL_SUITE, variants=[BASE, RAG | {"k": 1}])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "runs" / "latest" / "results.jsonl").read_text().splitlines()
    assert len(rows) == 2 and '"retrieved": [{"id": "p1"' in rows[1]
