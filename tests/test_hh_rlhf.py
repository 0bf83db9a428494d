"""Preference pairs from JSONL (plain or gzip): ragvft's rows and Anthropic HH-RLHF dialogues. The
reader's prompts (single- and multi-turn), its errors (one line naming file, line and field) and its
counted skips; `training.extra_preferences` reaching DPO's rows, the judge's and the leakage check;
the `suite.hh_rlhf` split (no test prompt trained on); and the real harmless-base test file."""

import gzip
import json
from pathlib import Path

import pytest

from core.errors import InputError
from harness.artifacts import load_suite
from harness.config import load_config
from harness.training.dpo import DPOTraining, dpo_rows
from harness.training.judge import judge_rows
from suites.leakage import find_leaks
from suites.preferences import DIVERGE, EMPTY, IDENTICAL, hh_rlhf_suite, read_preferences
from tests.conftest import BASE, DROP, assert_input_error, cli_bench, micro, write_config

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf"


def dialogue(*turns: str) -> str:
    """HH-RLHF's form: turns alternate Human / Assistant, each after a blank line."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))


def hh(*prompt: str, chosen: str, rejected: str) -> dict:
    return {"chosen": dialogue(*prompt, chosen), "rejected": dialogue(*prompt, rejected)}


def write(path: Path, rows: list) -> Path:
    """One row a line (a str row is written as it is); gzip-compressed for a .gz name."""
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    return path


def test_single_turn_multi_turn_and_ragvft_rows(tmp_path):
    path = write(
        tmp_path / "prefs.jsonl.gz",
        [
            hh("How do I boil an egg?", chosen="Put it in boiling water.", rejected="I won't say."),
            hh("Hi", "Hello! How can I help?", "Name a fruit.", chosen="An apple.", rejected="No."),
            {"question": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
        ],
    )
    got = read_preferences(path, fact_prefix="x-")
    assert [(r.line, r.turns) for r in got.rows] == [(1, 1), (2, 2), (3, 1)]
    single, multi, own = got.pairs
    assert (single.question, single.chosen, single.rejected) == (
        "How do I boil an egg?",
        "Put it in boiling water.",
        "I won't say.",
    )
    # a multi-turn prompt keeps its earlier turns, one `Role: text` line each, ending with the Human's
    assert multi.question == "Human: Hi\nAssistant: Hello! How can I help?\nHuman: Name a fruit."
    assert (multi.chosen, multi.rejected) == ("An apple.", "No.")
    assert (own.question, own.chosen, own.rejected, own.fact_id) == (
        "Capital of France?",
        "Paris",
        "Lyon",
        "x-3",
    )
    assert not got.skipped and got.note() == "prefs.jsonl.gz: 3 preference pairs (2 single-turn)"
    # the same rows uncompressed read the same
    plain = tmp_path / "prefs.jsonl"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    assert read_preferences(plain, fact_prefix="x-").rows == got.rows


def test_rows_that_teach_nothing_are_skipped_and_counted(tmp_path):
    diverging = {  # rejected has an extra exchange: no single choice after one shared prompt
        "chosen": dialogue("Tell me a joke.", "Why did the chicken cross the road?"),
        "rejected": dialogue("Tell me a joke.", "No.", "Please?", "Fine: knock knock."),
    }
    path = write(
        tmp_path / "p.jsonl",
        [
            hh("Q1?", chosen="", rejected="Something."),
            hh("Q2?", chosen="Same.", rejected="Same."),
            diverging,
            hh("Q4?", chosen="Good.", rejected="Bad."),
        ],
    )
    got = read_preferences(path)
    assert [r.line for r in got.rows] == [4]
    assert got.skipped == {EMPTY: [1], IDENTICAL: [2], DIVERGE: [3]}
    assert got.note() == (
        "p.jsonl: 1 preference pairs (1 single-turn); skipped 3: empty reply: 1 (line 1); "
        "identical replies: 1 (line 2); dialogues differ before the last Assistant turn: 1 (line 3)"
    )


GOOD = hh("Q?", chosen="Yes.", rejected="No.")


@pytest.mark.parametrize(
    "row, where, words",
    [
        ('{"chosen": "x", ', "p.jsonl:2", "invalid JSON"),
        ({"chosen": dialogue("Q?", "Yes.")}, "p.jsonl:2: rejected", "missing field"),
        ({"chosen": dialogue("Q?", "Yes."), "rejected": 3}, "p.jsonl:2: rejected", "expected str, got int"),
        ({"chosen": "Paris", "rejected": "Lyon"}, "p.jsonl:2: chosen", "not a dialogue"),
        (
            {"chosen": dialogue("Q?", "A.", "More?"), "rejected": dialogue("Q?", "B.")},
            "p.jsonl:2: chosen",
            "does not end with an Assistant turn",
        ),
        (
            hh("Q?", chosen="A.", rejected="B.") | {"rejected": dialogue("Other?", "B.")},
            "p.jsonl:2: rejected",
            "not the same conversation as chosen",
        ),
        ({"question": "Q?", "chosen": "A", "rejected": "A"}, "p.jsonl:2: rejected", "same as chosen"),
        ({"question": " ", "chosen": "A", "rejected": "B"}, "p.jsonl:2: question", "empty"),
        ({"question": "Q?", "chosen": "", "rejected": "B"}, "p.jsonl:2: chosen", "empty"),
    ],
)
def test_bad_rows_are_one_line_naming_file_line_and_field(tmp_path, row, where, words):
    path = write(tmp_path / "p.jsonl", [GOOD, row])
    with pytest.raises(InputError) as e:
        read_preferences(path)
    message = str(e.value)
    assert f"{path}:{where.split(':', 1)[1]}" in message and words in message and "\n" not in message


def test_a_bad_extra_preferences_file_stops_the_bench_in_one_line(tmp_path, cache_dir):
    diverging_first = {"chosen": dialogue("Q?", "Yes."), "rejected": dialogue("Other?", "No.")}
    write(tmp_path / "extra.jsonl.gz", [GOOD, GOOD, diverging_first])
    result = cli_bench(tmp_path, training={"extra_preferences": "extra.jsonl.gz"})
    words = "extra.jsonl.gz:3: rejected: not the same conversation as chosen"
    assert_input_error(result, words, no_run_in=tmp_path)


def test_a_broken_gzip_file_is_an_input_error(tmp_path):
    path = tmp_path / "p.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"question": "Q?"}\n' * 50)[:40])
    with pytest.raises(InputError, match="p.jsonl.gz: not a readable gzip file"):
        read_preferences(path)


def test_extra_preferences_reach_dpo_the_judge_and_the_leakage_check(tmp_path):
    test_q = load_suite(load_config(write_config(tmp_path))).questions[0]
    (tmp_path / "data").mkdir()
    write(
        tmp_path / "data" / "extra.jsonl.gz",
        [
            hh("Is the sky green?", chosen="No, it is blue.", rejected="Yes."),
            {"question": test_q.text, "chosen": "the right one", "rejected": "a wrong one"},
        ],
    )
    config = load_config(write_config(tmp_path, training={"extra_preferences": "data/extra.jsonl.gz"}))
    # read against the config's folder
    assert config.training.extra_preferences == str(tmp_path / "data" / "extra.jsonl.gz")
    plain = load_suite(load_config(write_config(tmp_path / "data")))
    suite = load_suite(config)
    extra = suite.training.preferences[len(plain.training.preferences) :]
    assert [(p.question, p.fact_id) for p in extra] == [
        ("Is the sky green?", "extra-pref-1"),
        (test_q.text, "extra-pref-2"),
    ]
    rows = dpo_rows(suite, DPOTraining(), seed=0)
    assert len(rows) == len(plain.training.preferences) + 2
    assert (
        rows[-2]["prompt"].endswith("Is the sky green?\nAnswer:")
        and rows[-2]["chosen"].strip() == "No, it is blue."
    )
    assert any("Is the sky green?" in r["prompt"] for r in judge_rows(suite, seed=0))
    leaks = find_leaks(suite.questions, suite.training)
    assert leaks[test_q.id]["where"] == "dpo" and leaks[test_q.id]["training_answer"] == "the right one"


def _pairs(n: int, start: int = 0) -> list[dict]:
    return [
        hh(f"Question number {i}?", chosen=f"Good answer {i}.", rejected=f"Bad {i}.")
        for i in range(start, start + n)
    ]


def test_the_suite_tests_the_last_single_turn_prompts_and_trains_on_the_others(tmp_path):
    multi = hh("Hello", "Hi!", "Question number 9?", chosen="Nine.", rejected="No.")
    rows = (
        _pairs(3) + [hh("Question number 8?", chosen="An earlier 8.", rejected="x")] + _pairs(4, 5) + [multi]
    )
    # lines: 1-3 q0-q2, 4 an earlier q8, 5-8 q5-q8, 9 a multi-turn pair (never a test question)
    path = write(tmp_path / "hh.jsonl.gz", rows)
    suite = hh_rlhf_suite(read_preferences(path, fact_prefix="hh-"), test=3)
    assert [(q.id, q.text, q.answers) for q in suite.questions] == [
        (f"hh-{line}", f"Question number {i}?", (f"Good answer {i}.",))
        for line, i in ((6, 6), (7, 7), (8, 8))
    ]
    assert suite.passages == () and all(q.gold_passage_ids == () for q in suite.questions)
    trained = [p.question for p in suite.training.preferences]
    assert trained == [p.question for p in suite.training.sft]
    assert [p.answer for p in suite.training.sft][:3] == [
        "Good answer 0.",
        "Good answer 1.",
        "Good answer 2.",
    ]
    # line 4 asks a test question (q8) in other rows: left out, so no test prompt is trained on
    assert trained[:4] == [f"Question number {i}?" for i in (0, 1, 2, 5)] and len(trained) == 5
    assert trained[4].startswith("Human: Hello\n") and not {q.text for q in suite.questions} & set(trained)
    assert not find_leaks(suite.questions, suite.training)
    short = hh_rlhf_suite(read_preferences(path), test=3, max_words=8)  # the multi-turn pair has 9
    assert [p.question for p in short.training.sft] == trained[:4] and short.questions == suite.questions
    limited = hh_rlhf_suite(read_preferences(path), test=3, limit=2)
    assert len(limited.training.preferences) == len(limited.training.sft) == 2
    with pytest.raises(
        InputError, match="7 single-turn pairs with distinct prompts, fewer than the 20 to test"
    ):
        hh_rlhf_suite(read_preferences(path), test=20)


def hh_config(source: dict, *variants: dict, **overrides) -> dict:
    """The micro config on an `hh_rlhf` suite: no corpus, so no retriever and no rag variant."""
    suite = {"builtin": DROP, "hh_rlhf": source}
    return micro(suite=suite, retrievers=DROP, variants=[BASE, *variants], **overrides)


def test_the_suite_source_in_a_config(tmp_path):
    write(tmp_path / "hh.jsonl", _pairs(6))
    data = hh_config({"path": "hh.jsonl", "test": 2, "limit": 3})
    config = load_config(write_config(tmp_path, data))
    assert config.suite.hh_rlhf.path == str(tmp_path / "hh.jsonl")
    suite = load_suite(config)
    assert suite.name == "hh-rlhf-hh" and len(suite.questions) == 2 and len(suite.training.sft) == 3
    both = {"builtin": {}, **data["suite"]}
    with pytest.raises(InputError, match="suite: .*exactly one suite source.*'hh_rlhf'"):
        load_config(write_config(tmp_path, data | {"suite": both}))
    with pytest.raises(InputError, match=r"bench.yaml:\d+: retrievers: the hh_rlhf suite has no corpus"):
        load_config(write_config(tmp_path, data, retrievers={"bm25": {"kind": "bm25"}}))


@pytest.mark.skipif(
    not (DATA / "harmless-base-test.jsonl.gz").exists(),
    reason=f"{DATA} is absent (real data lives in ../shared/data)",
)
def test_the_real_harmless_base_test_file():
    got = read_preferences(DATA / "harmless-base-test.jsonl.gz", fact_prefix="hh-")
    assert len(got.rows) == 2303 and sum(r.turns == 1 for r in got.rows) == 658
    assert got.skipped == {EMPTY: [87, 517, 926, 1104], DIVERGE: [1255, 1689, 1951, 1953, 2037]}
    assert all(p.question and p.chosen and p.rejected and p.chosen != p.rejected for p in got.pairs)
    suite = hh_rlhf_suite(got, test=100)
    assert len(suite.questions) == 100 and len(suite.training.preferences) == 2203  # no prompt shared
    assert not {q.text for q in suite.questions} & {p.question for p in suite.training.preferences}
    # configs/openbezoar.yaml's miniature: 132 pairs of at most 35 words, 40 tested, 60 trained
    mini = hh_rlhf_suite(got, test=40, limit=60, max_words=35)
    assert (len(mini.questions), len(mini.training.sft), len(mini.training.preferences)) == (40, 60, 60)
    assert not find_leaks(mini.questions, mini.training)  # not even a near-duplicate


OPENBEZOAR_MICRO = hh_config(
    {"path": "hh.jsonl.gz", "test": 4, "limit": 8},
    {"name": "sft", "adapter": "sft"},
    {"name": "dpo", "adapter": "dpo"},
    metrics=["f1"],
    training={"sft": {"epochs": 2}, "dpo": {"epochs": 1}},
    judge={"builtin": {"epochs": 1}, "modes": ["pairwise"]},
)


def test_openbezoar_in_micro_runs_end_to_end(tmp_path, cache_dir):
    """configs/openbezoar.yaml's shape on the micro model: SFT, then DPO from it, judged pairwise."""
    assert "hh_rlhf:" in Path("configs/openbezoar.yaml").read_text()
    write(tmp_path / "hh.jsonl.gz", _pairs(12))
    result = cli_bench(tmp_path, OPENBEZOAR_MICRO)
    assert result.exit_code == 0, result.output
    assert "hh.jsonl.gz: 12 preference pairs (12 single-turn)" in result.output
    run = tmp_path / "runs" / "latest"
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(summary["variants"]) == {"base", "sft", "dpo"} and summary["suite"] == "hh-rlhf-hh"
    assert (manifest["suite"]["questions"], manifest["suite"]["passages"]) == (4, 0)
    pairwise = summary["judge_reliability"]["pairwise"]
    assert pairwise["n"] == 8  # sft and dpo against base, 4 each
    # an answer the same as base's is a tie without asking; the others are judged
    assert pairwise["judged"] == 8 - pairwise["identical_answers"] and pairwise["judged"] > 0
    adapters = manifest["adapters"]
    assert adapters["sft"]["training"]["examples"] == adapters["dpo"]["training"]["examples"] == 8
    assert adapters["dpo"]["training"]["init_method"] == "sft"
