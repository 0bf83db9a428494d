"""The bad-input catalogue, through the command line: every malformed input ends with one line
naming the file (and the line and field where there is one), exit code 2, no traceback, and no
run written. (Config typos are also covered line by line in test_config_errors.py.)"""

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import MICRO_CONFIG

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
CONFIG = {  # (replace, with) on the micro config
    "unknown retriever kind": (
        ("bm25: {kind: bm25}", "bm25: {kind: bm52}"),
        "retrievers.bm25",
        "'bm25', 'dense', 'hybrid'",
    ),
    "hybrid of an unknown retriever": (
        ("bm25: {kind: bm25}", "bm25: {kind: bm25}\n  mix: {kind: hybrid, of: [bm25, dnese]}"),
        "retrievers.mix.of.1",
        "'dnese' is not a bm25 or dense retriever",
    ),
    "bad chunking": (
        (
            "  builtin: {seed: 3, scale: 4}",
            "  builtin: {seed: 3, scale: 4}\n  chunking: {words: 5, overlap: 5}",
        ),
        "suite.chunking",
        "overlap must be smaller",
    ),
    "two suite sources": (
        ("  builtin: {seed: 3, scale: 4}", "  builtin: {seed: 3, scale: 4}\n  squad: {path: x.json}"),
        "suite",
        "exactly one suite source",
    ),
    "missing suite file": (
        ("  builtin: {seed: 3, scale: 4}", "  squad: {path: nowhere.json}"),
        "nowhere.json",
        "file not found",
    ),
    "gate on an unknown variant": (
        (
            "bootstrap_samples: 200",
            "bootstrap_samples: 200\ngate: {rules: [{variant: rga, metric: em, margin: 0.1}]}",
        ),
        "gate.rules.0.variant",
        "unknown variant",
    ),
    "gate rule with no check": (
        ("bootstrap_samples: 200", "bootstrap_samples: 200\ngate: {rules: [{variant: rag, metric: em}]}"),
        "gate.rules.0",
        "give 'margin', 'floor' or both",
    ),
    "gate on macro_f1": (
        (
            "bootstrap_samples: 200",
            "bootstrap_samples: 200\ngate: {rules: [{variant: rag, metric: macro_f1, margin: 0.1}]}",
        ),
        "gate.rules.0.metric",
        "corpus-level score",
    ),
}


def _run(tmp_path, config_text):
    path = tmp_path / "bench.yaml"
    path.write_text(config_text)
    result = CliRunner().invoke(app, ["bench", "--config", str(path)])
    return result, path


def _assert_one_line_exit_2(result, tmp_path, *needles):
    out = result.output.strip()
    assert result.exit_code == 2, out
    assert out.count("\n") == 0 and "Traceback" not in out, out
    for needle in needles:
        assert needle in out, (needle, out)
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize("case", EXTRA_SFT)
def test_training_jsonl(tmp_path, cache_dir, case):
    content, where, message = EXTRA_SFT[case]
    (tmp_path / "extra.jsonl").write_bytes(content)
    result, _ = _run(tmp_path, MICRO_CONFIG + "training: {extra_sft: extra.jsonl}\n")
    _assert_one_line_exit_2(result, tmp_path, f"extra.jsonl{where}", message)


@pytest.mark.parametrize("case", SQUAD)
def test_squad_file(tmp_path, cache_dir, case):
    data, field, message = SQUAD[case]
    (tmp_path / "s.json").write_text(json.dumps(data))
    result, _ = _run(
        tmp_path, MICRO_CONFIG.replace("  builtin: {seed: 3, scale: 4}", "  squad: {path: s.json}")
    )
    _assert_one_line_exit_2(result, tmp_path, "s.json", field, message)


@pytest.mark.parametrize("case", CONFIG)
def test_config(tmp_path, cache_dir, case):
    (old, new), field, message = CONFIG[case]
    assert old in MICRO_CONFIG
    result, _ = _run(tmp_path, MICRO_CONFIG.replace(old, new))
    _assert_one_line_exit_2(result, tmp_path, field, message)


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
    config = MICRO_CONFIG.replace(
        "  builtin: {seed: 3, scale: 4}", "  jsonl: {corpus: corpus.jsonl, questions: questions.jsonl}"
    )
    result, _ = _run(tmp_path, config)
    _assert_one_line_exit_2(result, tmp_path, where, message)


def test_a_good_jsonl_suite_runs(tmp_path, cache_dir):
    (tmp_path / "corpus.jsonl").write_bytes(CORPUS)
    (tmp_path / "questions.jsonl").write_text(
        '{"id": "q1", "question": "What colour is the sky?", "answers": ["blue"], "gold_passage_ids": ["p1"]}\n'
    )
    config = MICRO_CONFIG.replace(
        "  builtin: {seed: 3, scale: 4}", "  jsonl: {corpus: corpus.jsonl, questions: questions.jsonl}"
    ).replace("k: 2", "k: 1")
    result, _ = _run(tmp_path, config)
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "runs" / "latest" / "results.jsonl").read_text().splitlines()
    assert len(rows) == 2 and '"retrieved": [{"id": "p1"' in rows[1]
