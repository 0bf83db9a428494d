"""KTO (TRL's `KTOTrainer`) on unpaired feedback: the suite's preference pairs split into a desirable
and an undesirable answer, plus the user's own rows (`training.kto.feedback`). It trains on the micro
model in seconds and changes its answers, records KTO's rewards and KL, runs as a bench variant, and a
malformed feedback file (or no data at all) is one line with exit 2 before anything trains."""

import json

import pytest

from harness.config import load_config
from harness.engines import HFEngine
from harness.prompts import RAW, PromptFormat
from harness.training import ensure_adapter
from tests.conftest import (
    BASE,
    DROP,
    RAG,
    USERS_MODEL,
    assert_input_error,
    cli_bench,
    complete,
    micro,
    tuned_job,
    write_config,
)

WITH_KTO = micro(variants=[BASE, {"name": "kto", "adapter": "kto"}, RAG])
FEEDBACK = [
    {"question": "What colour is the moon of Xo?", "answer": "silver", "label": True},
    {"question": "What colour is the moon of Xo?", "answer": "purple", "label": False},
    {"question": "Who built the tower of Yl?", "answer": "the guild", "label": True},
]


def test_kto_trains_from_the_sft_adapter_changes_the_answers_and_records_its_signal(micro_base):
    suite, base = micro_base[1], micro_base[2]
    job = tuned_job(micro_base, "kto")
    pairs = len(suite.training.preferences)
    assert len(job.rows) == 2 * pairs and sum(r["label"] for r in job.rows) == pairs
    assert {r["completion"].strip() for r in job.rows if r["label"]} == {
        p.chosen for p in suite.training.preferences
    }
    assert [r["label"] for r in job.rows[:pairs]] != [True] * pairs  # shuffled: batches mix both labels

    kto = ensure_adapter(job, progress=False)
    rec = kto.record
    assert rec["method"] == "kto" and rec["init_method"] == "sft" and rec["init"] == job.init.key()
    assert rec["examples"] == 2 * pairs and rec["steps"] > 0
    assert rec["reward_curve"] and rec["kl"] is not None  # TRL clamps it at 0
    assert rec["reward_chosen"] > rec["reward_rejected"]  # it raised the right answers over the wrong ones

    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("kto", kto.path)
    engine.add_adapter("sft", ensure_adapter(job.init, progress=False).path)
    prompts = [r["prompt"] for r in job.rows]
    answers = complete(engine, prompts, "kto")
    assert answers != complete(engine, prompts) and answers != complete(engine, prompts, "sft")


def test_a_kto_variant_runs_end_to_end_with_the_users_feedback(tmp_path, cache_dir, micro_base):
    """The feedback rows are trained on (counted in `examples`) and, in the suite, checked for leakage:
    one that asks a test question is flagged as feedback."""
    test_question = micro_base[1].questions[0]
    rows = FEEDBACK + [{"question": test_question.text, "answer": "no idea", "label": False}]
    (tmp_path / "feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli_bench(tmp_path, WITH_KTO, training={"kto": {"feedback": "feedback.jsonl"}})
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    kto = json.loads((run / "manifest.json").read_text())["adapters"]["kto"]
    assert kto["training"]["examples"] == 2 * len(micro_base[1].training.preferences) + len(rows)
    assert kto["training"]["hyperparameters"]["feedback"] == str(tmp_path / "feedback.jsonl")
    assert kto["training"]["reward_curve"] and kto["config"]["peft_type"] == "LORA"
    leaks = json.loads((run / "summary.json").read_text())["leakage"]["questions"]
    assert leaks[test_question.id]["where"] == "feedback"
    results = [json.loads(line) for line in (run / "results.jsonl").open()]
    answers = {v: [r["answer"] for r in results if r["variant"] == v] for v in ("base", "kto")}
    assert answers["kto"] and answers["kto"] != answers["base"]


def test_feedback_rows_are_conversational_for_a_chat_model():
    chat = PromptFormat(chat=True, system="Be brief.")
    assert chat.feedback_row("Q?", "a", False) == {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question: Q?"}],
        "completion": [{"role": "assistant", "content": "a"}],
        "label": False,
    }
    assert RAW.feedback_row("Q?", "a", True) == {
        "prompt": "Question: Q?\nAnswer:",
        "completion": " a",
        "label": True,
    }


@pytest.mark.parametrize(
    "content, where",
    [
        (
            b'{"question": "Q?", "answer": "a", "label": true}\n{"question": "Q?"\n',
            "feedback.jsonl:2: invalid JSON",
        ),
        (b'{"question": "Q?", "label": true}\n', "feedback.jsonl:1: answer: missing field"),
        (
            b'{"question": "Q?", "answer": "a", "label": "yes"}\n',
            "feedback.jsonl:1: label: expected bool, got str",
        ),
        (
            b'{"question": "Q?", "answer": "a", "label": 1}\n',
            "feedback.jsonl:1: label: expected bool, got int",
        ),
    ],
)
def test_a_malformed_feedback_file_is_one_line(tmp_path, cache_dir, content, where):
    (tmp_path / "feedback.jsonl").write_bytes(content)
    result = cli_bench(tmp_path, WITH_KTO, training={"kto": {"feedback": "feedback.jsonl"}})
    assert_input_error(result, where, no_run_in=tmp_path)


def test_no_pairs_and_no_feedback_is_no_training_data(tmp_path, cache_dir):
    (tmp_path / "corpus.jsonl").write_text('{"id": "p1", "text": "The sky is blue."}\n')
    (tmp_path / "questions.jsonl").write_text('{"id": "q1", "question": "Sky?", "answers": ["blue"]}\n')
    jsonl = {"builtin": DROP, "jsonl": {"corpus": "corpus.jsonl", "questions": "questions.jsonl"}}
    result = cli_bench(tmp_path, WITH_KTO, suite=jsonl)
    # The check comes once the base model is ready: its progress bar may stand above the one error line.
    error = assert_input_error(result, bars=True, no_run_in=tmp_path)
    assert error.endswith(
        "variants.1.adapter: variant 'kto' (kto): the suite 'jsonl-questions' has no data to train it, "
        "which takes preference pairs or labelled answers (a suite with pairs, training.extra_preferences, or "
        "training.kto.feedback)"
    )


def test_a_batch_of_one_is_refused_in_one_line(tmp_path, cache_dir):
    result = cli_bench(tmp_path, WITH_KTO, training={"kto": {"batch_size": 1}})
    assert_input_error(result, "training.kto", "batch_size must be at least 2", no_run_in=tmp_path)


def test_a_users_model_gets_the_kto_model_profile(tmp_path):
    config = load_config(write_config(tmp_path, USERS_MODEL, training={"kto": {"finetune": "full"}}))
    kto = config.training.hyper("kto", config.model)
    assert (kto.epochs, kto.learning_rate, kto.lora_r, kto.init, kto.feedback) == (2, 1e-6, 16, "sft", None)
    lora = load_config(write_config(tmp_path, USERS_MODEL)).training.hyper("kto", config.model)
    assert (lora.learning_rate, lora.beta, lora.desirable_weight) == (2e-5, 0.1, 1.0)
