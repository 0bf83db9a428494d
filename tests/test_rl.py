"""Online RL from the SFT adapter: GRPO with the suite's F1 as its reward, and RLHF (a reward model
trained on the preference pairs, then RLOO against it). Each trains on the micro model in seconds,
its own signal moves the right way (mean reward up over training; the reward model ranks the pairs it
trained on), it changes the answers, and it runs as a bench variant; bad input is one line."""

import json
import statistics

import pytest

from harness.config import load_config
from harness.engines import HFEngine
from harness.training import ensure_adapter
from harness.training.grpo import answer_text, f1_reward
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

SHORT_SFT = {"epochs": 6.0}  # a start that knows some answers, not all: room for the reward to rise
FAST = {"epochs": 16.0, "learning_rate": 3e-3}  # the micro model moves in 48 steps (the default: 3e-4)


def _thirds(curve: list[dict]) -> tuple[float, float]:
    """Mean reward over the first and the last third of training (one step's is noisy: 16 samples)."""
    rewards = [c["reward"] for c in curve]
    n = len(rewards) // 3
    return statistics.mean(rewards[:n]), statistics.mean(rewards[-n:])


def test_the_f1_reward_scores_the_answer_as_the_bench_reads_it():
    completions = [" Blue sky\nmore text", [{"role": "assistant", "content": "blue"}], "red", "  "]
    assert answer_text(completions[0]) == "Blue sky"
    assert f1_reward(completions, ["blue sky", "Blue", "blue", "blue"]) == [1.0, 1.0, 0.0, 0.0]


def test_grpo_from_sft_raises_its_mean_reward_and_changes_the_answers(micro_base):
    base = micro_base[2]
    job = tuned_job(micro_base, "grpo", **FAST)
    job.init.hyper = job.init.hyper | SHORT_SFT
    assert job.init.method.name == "sft" and [r["answer"] for r in job.rows] == [
        p.answer for p in micro_base[1].training.sft
    ]
    grpo = ensure_adapter(job, progress=False)
    rec = grpo.record
    assert rec["method"] == "grpo" and rec["init_method"] == "sft" and grpo.config["peft_type"] == "LORA"
    assert rec["steps"] == len(rec["reward_curve"]) == 48  # 14 prompts x 4 samples / 16 a step x 16 epochs
    first, last = _thirds(rec["reward_curve"])
    assert last > first + 0.05, (first, last)
    assert rec["kl"] > 0  # it moved away from SFT, and beta's KL says how far

    sft = ensure_adapter(job.init, progress=False)
    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("sft", sft.path)
    engine.add_adapter("grpo", grpo.path)
    prompts = [r["prompt"] for r in job.rows]
    assert complete(engine, prompts, "grpo") != complete(engine, prompts, "sft")


def test_rlhf_trains_a_reward_model_first_then_rloo_against_it(micro_base):
    base = micro_base[2]
    job = tuned_job(micro_base, "rlhf", **FAST, beta=0.05)
    job.init.hyper = job.init.hyper | SHORT_SFT
    reward_job = job.needs["reward"]
    held = [r for r in reward_job.rows if r["heldout"]]
    assert len(held) == 3 and len(reward_job.rows) == 14  # a fifth of the pairs kept out, seeded

    rlhf = ensure_adapter(job, progress=False)
    rec = rlhf.record
    assert rec["method"] == "rlhf" and rec["init_method"] == "sft"
    rm = rec["reward"]  # the reward model's own record, on the RLHF adapter's card
    assert rm["method"] == "reward" and rm["steps"] == 30
    assert rm["train_accuracy"] >= 0.8  # it learned to rank the pairs it saw (chance: 0.5)
    assert rm["heldout_accuracy"] is not None and len(rm["heldout_curve"]) >= 2
    assert rm["heldout_curve"][-1]["step"] == rm["steps"]  # scored once more after the last step
    first, last = _thirds(rec["reward_curve"])
    assert last > first, (first, last)  # the policy found answers the reward model scores higher

    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("rlhf", rlhf.path)
    prompts = [r["prompt"] for r in job.rows]
    assert complete(engine, prompts, "rlhf") != complete(engine, prompts)


def test_the_reward_model_key_moves_the_rlhf_key(micro_base):
    job = tuned_job(micro_base, "rlhf")
    other = tuned_job(micro_base, "rlhf")
    other.needs["reward"].hyper = other.needs["reward"].hyper | {"heldout": 0.5}
    assert job.key() != other.key() and job.init.key() == other.init.key()


WITH_RL = micro(
    variants=[BASE, {"name": "grpo", "adapter": "grpo"}, {"name": "rlhf", "adapter": "rlhf"}, RAG]
)
BENCH_FAST = {"grpo": {"epochs": 2}, "rlhf": {"epochs": 2}, "reward": {"epochs": 4}, "sft": {"epochs": 6}}


def test_grpo_and_rlhf_variants_run_end_to_end(tmp_path, cache_dir):
    result = cli_bench(tmp_path, WITH_RL, training=BENCH_FAST)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    manifest = json.loads((run / "manifest.json").read_text())
    grpo, rlhf = manifest["adapters"]["grpo"], manifest["adapters"]["rlhf"]
    assert grpo["training"]["reward_curve"] and grpo["training"]["init_method"] == "sft"
    assert rlhf["training"]["reward"]["method"] == "reward"
    assert manifest["config"]["training"]["reward"]["epochs"] == 4  # the reward model's settings too
    results = [json.loads(line) for line in (run / "results.jsonl").open()]
    answers = {v: [r["answer"] for r in results if r["variant"] == v] for v in ("base", "grpo", "rlhf")}
    assert answers["grpo"] != answers["base"] and answers["rlhf"] != answers["base"]
    report = (run / "report.html").read_text()
    assert "grpo" in report and "rlhf" in report


def test_rlhf_on_a_suite_without_pairs_is_one_line_before_training(tmp_path, cache_dir):
    (tmp_path / "corpus.jsonl").write_text('{"id": "p1", "text": "The sky is blue."}\n')
    (tmp_path / "questions.jsonl").write_text('{"id": "q1", "question": "Sky?", "answers": ["blue"]}\n')
    (tmp_path / "sft.jsonl").write_text('{"question": "Colour of the sky?", "answer": "blue"}\n')
    jsonl = {"builtin": DROP, "jsonl": {"corpus": "corpus.jsonl", "questions": "questions.jsonl"}}
    result = cli_bench(tmp_path, WITH_RL, suite=jsonl, training={"extra_sft": "sft.jsonl"})
    assert_input_error(  # (the base model's bar may stand above it)
        result,
        "variants.2.adapter: variant 'rlhf' (rlhf)",
        "no data to train the reward adapter it needs, which takes preference pairs",
        bars=True,
        no_run_in=tmp_path,
    )


@pytest.mark.parametrize(
    "training, needles",
    [
        (
            {"grpo": {"batch_size": 6}},
            ["training.grpo", "must be a multiple of num_generations (4)"],
        ),
        ({"rewards": {"epochs": 2}}, ["training.rewards", "unknown training method", "reward"]),
    ],
)
def test_bad_rl_settings_are_one_line(tmp_path, cache_dir, training, needles):
    assert_input_error(cli_bench(tmp_path, WITH_RL, training=training), *needles, no_run_in=tmp_path)


def test_the_reward_model_is_not_a_variant(tmp_path, cache_dir):
    result = cli_bench(tmp_path, variants=[BASE, {"name": "rm", "adapter": "reward"}, RAG])
    assert_input_error(result, "variants.1.adapter", "unknown training method 'reward'", no_run_in=tmp_path)


def test_a_users_model_gets_the_rl_model_profiles(tmp_path):
    config = load_config(write_config(tmp_path, USERS_MODEL))
    grpo = config.training.hyper("grpo", config.model)
    assert (grpo.learning_rate, grpo.num_generations, grpo.temperature, grpo.lora_r) == (1e-5, 8, 1.0, 16)
    assert config.training.hyper("rlhf", config.model).beta == 0.05
    builtin = load_config(write_config(tmp_path))
    assert builtin.training.hyper("rlhf", builtin.model).beta == 0.2  # the built-in recipe's
    assert config.training.hyper("reward", config.model).learning_rate == 1e-4
