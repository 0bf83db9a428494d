"""RAFT: SFT with passages in the prompt, the gold passage among BM25's distractors in a share of the
rows and distractors alone in the rest. The rows are what the paper describes, deterministic, in the
rag variants' prompt; a user's extra pairs bring their gold passages by id; a suite without gold
passages is one line; and a raft adapter trains and runs as a bench variant."""

import json

from harness.prompts import RAW
from harness.training.raft import RAFTTraining, raft_rows
from suites.builtin import builtin_suite
from tests.conftest import BASE, DROP, RAG, assert_input_error, cli_bench, micro

WITH_RAFT = micro(
    variants=[BASE, {"name": "raft+rag", "adapter": "raft", "retriever": "bm25", "k": 2}, RAG],
    training={"raft": {"epochs": 3, "passages": 2}},
)


def test_rows_hold_the_gold_passage_among_real_distractors_in_the_golden_share():
    suite = builtin_suite(7, scale=20)
    text = {p.id: p.text for p in suite.passages}
    pairs = suite.training.sft
    assert pairs and all(p.passage_ids and p.passage_ids[0] in text for p in pairs)
    hyper = RAFTTraining(passages=3, golden_fraction=0.7)
    rows = raft_rows(suite, hyper, seed=1)
    assert rows == raft_rows(suite, hyper, seed=1) and rows != raft_rows(suite, hyper, seed=2)
    golden = 0
    for pair, row in zip(pairs, rows, strict=True):
        shown = [t for t in text.values() if t in row["prompt"]]
        assert len(shown) == 3  # three real corpus passages, in the rag variants' prompt
        assert row["prompt"] == RAW.prompt(pair.question, _in_order(row["prompt"], shown))
        assert row["completion"] == " " + pair.answer
        golden += text[pair.passage_ids[0]] in row["prompt"]
    assert abs(golden / len(rows) - 0.7) < 0.12, golden / len(rows)
    ranks = set()
    for pair, row in zip(pairs, rows, strict=True):
        gold = text[pair.passage_ids[0]]
        if gold in row["prompt"]:
            ranks.add(_in_order(row["prompt"], [t for t in text.values() if t in row["prompt"]]).index(gold))
    assert ranks == {0, 1, 2}  # the gold passage at any rank, not always first

    none_golden = raft_rows(suite, RAFTTraining(passages=1, golden_fraction=0.0), seed=1)
    assert not any(text[p.passage_ids[0]] in r["prompt"] for p, r in zip(pairs, none_golden, strict=True))
    all_golden = raft_rows(suite, RAFTTraining(passages=1, golden_fraction=1.0), seed=1)
    assert all(text[p.passage_ids[0]] in r["prompt"] for p, r in zip(pairs, all_golden, strict=True))


def test_a_users_model_gets_the_papers_golden_share_and_the_tiny_model_always_the_gold_passage():
    model = RAFTTraining.of_profile("model")
    assert (model.golden_fraction, model.epochs) == (0.8, 3)  # the paper's P
    assert RAFTTraining.of_profile("builtin").golden_fraction == 1.0  # measured: docs/methods.md#raft
    mine = RAFTTraining.of_profile("model", RAFTTraining(golden_fraction=0.5))
    assert mine.golden_fraction == 0.5  # what the user sets wins


def _in_order(prompt: str, passages: list[str]) -> list[str]:
    return sorted(passages, key=prompt.find)


def test_a_suite_without_gold_passages_for_its_pairs_is_one_line(tmp_path, cache_dir):
    (tmp_path / "corpus.jsonl").write_text('{"id": "p1", "text": "The sky is blue."}\n')
    (tmp_path / "questions.jsonl").write_text('{"id": "q1", "question": "Sky?", "answers": ["blue"]}\n')
    (tmp_path / "extra.jsonl").write_text('{"question": "Colour of the sky?", "answer": "blue"}\n')
    text = micro(
        suite={"builtin": DROP, "jsonl": {"corpus": "corpus.jsonl", "questions": "questions.jsonl"}},
        variants=WITH_RAFT["variants"],
        training={"extra_sft": "extra.jsonl", **WITH_RAFT["training"]},
    )
    error = assert_input_error(cli_bench(tmp_path, text), bars=True, no_run_in=tmp_path)
    assert error.endswith(
        "variants.1.adapter: variant 'raft+rag' (raft): the suite 'jsonl-questions' has no data to train "
        "it, which takes training pairs whose gold passages are in the corpus (passage_ids on the SFT pairs)"
    )

    # with the gold passage's id on the row, the same pair trains RAFT; an unknown id is one line
    (tmp_path / "extra.jsonl").write_text(
        '{"question": "Colour?", "answer": "blue", "passage_ids": ["p9"]}\n'
    )
    words = "extra.jsonl:1: passage_ids: passage 'p9' is not in"
    assert_input_error(cli_bench(tmp_path, text), words, no_run_in=tmp_path)


def test_a_raft_variant_trains_and_runs_end_to_end(tmp_path, cache_dir):
    result = cli_bench(tmp_path, WITH_RAFT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    raft = json.loads((run / "manifest.json").read_text())["adapters"]["raft+rag"]
    assert raft["training"]["method"] == "raft" and raft["training"]["hyperparameters"]["passages"] == 2
    assert raft["training"]["loss_curve"][-1]["loss"] < raft["training"]["loss_curve"][0]["loss"]
    results = [json.loads(line) for line in (run / "results.jsonl").open()]
    answers = {v: [r["answer"] for r in results if r["variant"] == v] for v in ("base", "raft+rag")}
    assert answers["raft+rag"] and answers["raft+rag"] != answers["base"]
