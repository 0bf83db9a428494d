"""What an instruct model writes, scored and prompted honestly: `match` (the gold answer contained in
the answer, as whole words), `decision.metric`, and few-shot examples drawn from training pairs only,
never about the question's own fact."""

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.prompts import PromptFormat, fewshot
from judges import SCORERS, Answer
from suites.schema import QAPair, Question
from tests.conftest import assert_input_error, write_config


def _match(answer: str, *golds: str) -> float | None:
    return SCORERS["match"].score(Answer("q?", answer, golds)).value


@pytest.mark.parametrize(
    "answer, gold, value",
    [
        ("The Linar T14 comes with a 35 months warranty.", "35 months", 1.0),
        ("35 months", "35 months", 1.0),
        ("It costs 2406 Dollars!", "2406 dollars", 1.0),
        ("The Linar T14 comes with a 35-month warranty.", "35 months", 0.0),  # another word: not contained
        ("about 35 months", "3", 0.0),  # whole words: "3" is not in "35"
        ("made in Brepearhavens", "Brepearhaven", 0.0),
        ("", "35 months", 0.0),
    ],
)
def test_match_is_the_gold_answer_contained_as_whole_words(answer, gold, value):
    assert _match(answer, gold) == value


def test_match_takes_the_best_gold_and_is_undetermined_without_one():
    assert _match("It is made in Oslo.", "Bergen", "Oslo") == 1.0
    assert SCORERS["match"].score(Answer("q?", "x", ())).value is None
    assert SCORERS["match"].kind == "binary"  # paired like exact match: McNemar with Tango's interval
    assert _match("a", "A") == 1.0 and _match("b", "A") == 0.0  # a gold that normalises to nothing: EM


def test_fewshot_never_shows_the_questions_own_fact_and_never_looks_at_its_answer():
    pairs = [
        QAPair("How much does A cost?", "10 dollars", "f1", ("p1",)),
        QAPair("Where is B made?", "Oslo", "f2", ("p2",)),
        QAPair("How long is C's warranty?", "5 months", "f3", ("p3",)),
        QAPair("Who makes D?", "Acme", "f4", ("p4",)),
    ]
    q = Question("q1", "What is the price of A?", ("10 dollars",), ("p1",))
    assert fewshot(pairs, q, 2) == [("Where is B made?", "Oslo"), ("How long is C's warranty?", "5 months")]
    same_words = Question("q2", "who makes d", ("Acme",))  # the same question, no passage to tell
    assert ("Who makes D?", "Acme") not in fewshot(pairs, same_words, 4)
    assert fewshot(pairs, q, 0) == []
    # a label suite (no passages): the examples do not depend on the gold label, so none hints at it
    labels = [QAPair(f"claim {i}?", label) for i, label in enumerate(["yes", "no", "maybe", "yes"])]
    shots = {gold: fewshot(labels, Question("q", "claim x?", (gold,)), 3) for gold in ("yes", "no", "maybe")}
    assert (
        shots["yes"]
        == shots["no"]
        == shots["maybe"]
        == [("claim 0?", "yes"), ("claim 1?", "no"), ("claim 2?", "maybe")]
    )


def test_raw_fewshot_prompt_puts_worked_examples_before_the_question():
    fmt = PromptFormat().with_shots([("Where is B made?", "Oslo")])
    assert (
        fmt.prompt("Who makes D?", None)
        == "Question: Where is B made?\nAnswer: Oslo\n\nQuestion: Who makes D?\nAnswer:"
    )
    assert PromptFormat().prompt("Who makes D?", None) == "Question: Who makes D?\nAnswer:"
    assert (
        fmt.completion_row("Who makes D?", "Acme")["prompt"] == "Question: Who makes D?\nAnswer:"
    )  # never in training


def test_a_bench_with_fewshot_records_the_examples_in_every_prompt_and_decides_on_match(tmp_path, cache_dir):
    config = write_config(
        tmp_path, generation={"fewshot": 2}, metrics=["em", "f1", "match"], decision={"metric": "match"}
    )
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert result.exit_code == 0, result.output
    import json

    run = tmp_path / "runs" / "latest"
    rows = [json.loads(line) for line in (run / "results.jsonl").open()]
    for r in rows:
        assert r["prompt"].count("Question: ") == 3  # two worked examples, then the question
        shown = r["prompt"].rsplit("Question: ", 1)[0]
        assert not any(f"Answer: {g}\n" in shown for g in r["gold_answers"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["decision"]["metric"] == "match"
    assert "match" in summary["variants"]["rag"]


def test_decision_metric_must_be_a_paired_metric_of_the_run(tmp_path, cache_dir):
    config = write_config(tmp_path, decision={"metric": "match"})
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert_input_error(result, "decision.metric 'match' is not among the run's paired metrics (em, f1)")
