"""ORPO (TRL's experimental `ORPOTrainer`) on the suite's preference pairs, straight from the base: it
trains on the micro model in seconds and changes its answers, its record holds ORPO's signal moving
the right way, it runs as a bench variant, and a user's model gets its `model` profile."""

import json

from harness.config import load_config
from harness.engines import HFEngine
from harness.training import ensure_adapter
from tests.conftest import BASE, RAG, USERS_MODEL, cli_bench, complete, tuned_job, write_config

ORPO = {"name": "orpo", "adapter": "orpo"}
FAST = {"epochs": 12.0, "learning_rate": 1e-2}  # 12 steps: enough to move every figure below


def test_orpo_trains_from_the_base_changes_the_answers_and_records_its_signal(micro_base):
    suite, base = micro_base[1], micro_base[2]
    job = tuned_job(micro_base, "orpo", **FAST)
    assert job.init is None  # no SFT stage, no reference model
    assert [r["chosen"].strip() for r in job.rows] == [p.chosen for p in suite.training.preferences]

    orpo = ensure_adapter(job, progress=False)
    rec = orpo.record
    assert rec["method"] == "orpo" and rec["init"] is None and orpo.config["peft_type"] == "LORA"
    assert rec["steps"] == 12 and rec["hyperparameters"]["beta"] == 0.1
    first, last = rec["odds_curve"][0], rec["odds_curve"][-1]
    assert (last["log_odds_chosen"], last["log_odds_ratio"]) == (
        rec["log_odds_chosen"],
        rec["log_odds_ratio"],
    )
    assert rec["log_odds_chosen"] > max(first["log_odds_chosen"], 0)  # the right answer gained odds
    assert first["log_odds_ratio"] < rec["log_odds_ratio"] < 0  # log sigmoid of the odds, rising to 0
    assert rec["nll_loss"] < first["nll_loss"]  # and it learned the right answers themselves
    assert rec["reward_accuracy"] > 0.5 and rec["reward_margin"] > 0

    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("orpo", orpo.path)
    prompts = [r["prompt"] for r in job.rows]
    assert complete(engine, prompts, "orpo") != complete(engine, prompts)


def test_an_orpo_variant_runs_end_to_end(tmp_path, cache_dir):
    training = {"orpo": {"epochs": 4, "learning_rate": 1e-2}}
    result = cli_bench(tmp_path, variants=[BASE, ORPO, RAG], training=training)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    orpo = json.loads((run / "manifest.json").read_text())["adapters"]["orpo"]
    assert orpo["training"]["method"] == "orpo" and orpo["training"]["init"] is None
    assert orpo["training"]["odds_curve"] and orpo["training"]["reward_curve"]
    assert orpo["config"]["peft_type"] == "LORA"
    results = [json.loads(line) for line in (run / "results.jsonl").open()]
    answers = {v: [r["answer"] for r in results if r["variant"] == v] for v in ("base", "orpo")}
    assert answers["orpo"] and answers["orpo"] != answers["base"]


def test_a_users_model_gets_the_orpo_model_profile(tmp_path):
    config = load_config(write_config(tmp_path, USERS_MODEL))
    lora = config.training.hyper("orpo", config.model)
    assert (lora.epochs, lora.learning_rate, lora.lora_r, lora.beta) == (3, 1e-4, 16, 0.1)
    config = load_config(write_config(tmp_path, USERS_MODEL, training={"orpo": {"finetune": "full"}}))
    assert config.training.hyper("orpo", config.model).learning_rate == 8e-6
