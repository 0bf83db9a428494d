"""SQuAD-format suites (COVID-QA): chunks, gold chunks from answer offsets, a train split by
document, clear errors, and the real COVID-QA file when ../shared/data is present."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from harness.cli import app
from suites.squad import load_squad
from tests.conftest import assert_input_error

COVIDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "covidqa" / "covidqa.json"


def _doc(doc_id, words, qas):
    return {"document_id": doc_id, "context": " ".join(words), "qas": qas}


def _write(tmp_path, data, name="squad.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": "1", "data": [{"paragraphs": data}]}))
    return path


def _tiny(tmp_path):
    a = [f"a{i}" for i in range(30)]
    b = [f"b{i}" for i in range(12)]
    ctx_a = " ".join(a)
    start = ctx_a.index("a12")
    return _write(
        tmp_path,
        [
            _doc(
                "A",
                a,
                [
                    # off by one with a leading space, as 106 of COVID-QA's 878 answers are
                    {
                        "id": 1,
                        "question": "where is a12?",
                        "answers": [{"text": " a12 a13", "answer_start": start - 1}],
                    },
                    {"id": 2, "question": "impossible?", "answers": [], "is_impossible": True},
                ],
            ),
            _doc(
                "B", b, [{"id": 3, "question": "what is b2?", "answers": [{"text": "b2", "answer_start": 3}]}]
            ),
        ],
    )


def test_gold_chunks_and_the_document_split(tmp_path):
    suite = load_squad(_tiny(tmp_path), words=10, overlap=4, limit=1)
    assert [p.id for p in suite.passages][:5] == ["A#0", "A#1", "A#2", "A#3", "A#4"]
    (q,) = suite.questions  # limit 1; the impossible question is skipped
    assert q.id == "q-1" and q.answers == ("a12 a13",)
    assert q.gold_passage_ids == ("A#1", "A#2")  # a12-a13 sit in both chunks 6-15 and 12-21
    # Questions about other documents train; nothing about document A does.
    assert [p.question for p in suite.training.sft] == ["what is b2?"]
    assert suite.training.documents == (" ".join(f"b{i}" for i in range(12)),)
    assert suite.training.retrieval[0][0] == "what is b2?"


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ('{"data": [\n  {"paragraphs": [}\n]}', "not valid JSON", ":2:"),
        ('{"dat": []}', "missing field 'data'", "(top level)"),
        (
            '{"data": [{"paragraphs": [{"context": 3, "qas": []}]}]}',
            "expected str",
            "data.0.paragraphs.0.context",
        ),
        (
            '{"data": [{"paragraphs": [{"context": "x y", "qas": [{"id": 1, "question": " ", "answers": []}]}]}]}',
            "empty question",
            "data.0.paragraphs.0.qas.0.question",
        ),
        (
            (
                '{"data": [{"paragraphs": [{"context": "x y", "qas": [{"id": 1, "question": "q", "answers": '
                '[{"text": "zz", "answer_start": 0}]}]}]}]}'
            ),
            "does not occur in the context",
            "data.0.paragraphs.0.qas.0.answers.0",
        ),
    ],
)
def test_malformed_files_name_the_file_and_field(tmp_path, text, message, where):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_squad(path)
    assert str(path) in str(e.value) and message in str(e.value) and where in str(e.value)


def test_retrieval_command_compares_retrievers(tmp_path, cache_dir):
    _tiny(tmp_path)
    config = tmp_path / "bench.yaml"
    config.write_text(
        "suite:\n  squad: {path: squad.json}\n  chunking: {words: 10, overlap: 4}\n"
        "model:\n  builtin: {}\n"
        "retrievers:\n  bm25: {kind: bm25}\n  fast: {kind: bm25, backend: bm25s}\n"
        "  both: {kind: hybrid, of: [bm25, fast]}\n"
        "variants:\n  - {name: base}\n"
    )
    result = CliRunner().invoke(app, ["retrieval", "--config", str(config), "--k", "1,2"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    report = json.loads((run / "retrieval.json").read_text())
    assert set(report["retrievers"]) == {"bm25", "fast", "both"} and report["ks"] == [1, 2, 10]
    m = report["retrievers"]["bm25"]["metrics"]
    assert m["n"] == 2 and 0 <= m["recall@1"] <= m["recall@2"] <= m["recall@10"] <= 1
    rows = [json.loads(x) for x in (run / "retrieval.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(0 < len(r["retrieved"]) <= 10 for r in rows)
    bad = CliRunner().invoke(app, ["retrieval", "--config", str(config), "--k", "0,x"])
    assert_input_error(bad, "--k")


@pytest.mark.skipif(not COVIDQA.exists(), reason=f"{COVIDQA} is absent (real data lives in ../shared/data)")
def test_covidqa_bm25_lands_near_the_reference():
    from retrievers import BM25Retriever
    from retrievers.metrics import evaluate

    suite = load_squad(COVIDQA, words=100, overlap=20, limit=200)
    assert len(suite.questions) == 200 and all(q.gold_passage_ids for q in suite.questions)
    hits = BM25Retriever(suite.passages).search([q.text for q in suite.questions], 10)
    _, overall = evaluate(hits, [q.gold_passage_ids for q in suite.questions], ks=(10,))
    # reference (all 98 papers, same chunking and tokens): 83.5% of questions have a gold chunk in
    # the top 10; these are 70 of the 98 papers
    assert 0.78 <= overall["hit@10"] <= 0.90, overall
