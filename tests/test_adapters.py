"""Fine-tuning adapters: trained with TRL + PEFT on the micro model, cached by key, reloaded on one
base (multi-adapter), and they change the answers."""

import json

from harness.artifacts import adapter_job
from harness.engines import HFEngine
from harness.training import TRAINING_RECORD, ensure_adapter
from judges import exact_match
from tests.conftest import FAST_TRAINING, complete


def _job(micro_base, method, **hyper):
    config, suite, base = micro_base
    job = adapter_job(config, suite, base, method)
    job.hyper = job.hyper | FAST_TRAINING | hyper
    if job.init is not None:
        job.init.hyper = job.init.hyper | FAST_TRAINING
    return job


def _em(answers, golds):
    return sum(exact_match(a, g).value for a, g in zip(answers, golds, strict=True)) / len(golds)


def test_sft_and_dpo_adapters_train_reload_and_change_the_answers(micro_base):
    base = micro_base[2]
    trained: list[str] = []
    dpo_job = _job(micro_base, "dpo", epochs=4.0, learning_rate=5e-3)
    sft = ensure_adapter(_job(micro_base, "sft"), progress=False, trained=trained)
    dpo = ensure_adapter(dpo_job, progress=False, trained=trained)
    assert sft.status == "trained" and dpo.status == "trained" and [m for m, _ in trained] == ["sft", "dpo"]

    rec = json.loads((sft.path / TRAINING_RECORD).read_text())
    assert rec["method"] == "sft" and rec["steps"] == 60 and rec["tokens"] > 0
    assert rec["loss_curve"][-1]["loss"] < rec["loss_curve"][0]["loss"] / 2  # it learned
    drec = dpo.record
    assert drec["init"] == dpo_job.init.key()  # DPO started from the SFT adapter
    assert 0.0 <= drec["reward_accuracy"] <= 1.0 and drec["reward_curve"]
    assert drec["reward_margin"] > 0  # chosen answers gained on rejected ones
    assert sft.config["peft_type"] == "LORA" and sft.config["r"] == 32

    # One base model, two adapters loaded beside each other, switched by name.
    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("sft", sft.path)
    engine.add_adapter("dpo", dpo.path)
    prompts = [r["prompt"] for r in dpo_job.init.rows]
    golds = [(r["completion"].strip(),) for r in dpo_job.init.rows]
    answers = {name: complete(engine, prompts, name) for name in ("sft", "dpo")}
    answers["base"] = complete(engine, prompts)
    assert answers["sft"] != answers["base"] and answers["dpo"] != answers["base"]
    assert _em(answers["sft"], golds) > _em(answers["base"], golds)

    # The same job again is a cache hit: nothing trained, the same folder untouched.
    mtime = (sft.path / "adapter_model.safetensors").stat().st_mtime_ns
    again: list[str] = []
    assert ensure_adapter(_job(micro_base, "sft"), progress=False, trained=again).status == "cached"
    assert again == [] and (sft.path / "adapter_model.safetensors").stat().st_mtime_ns == mtime


def test_a_different_hyperparameter_or_seed_is_a_different_adapter(micro_base):
    a = _job(micro_base, "sft")
    assert _job(micro_base, "sft", learning_rate=2e-2).key() != a.key()
    b = _job(micro_base, "sft")
    b.seed += 1
    assert b.key() != a.key()
    dpo, dpo2 = _job(micro_base, "dpo"), _job(micro_base, "dpo")
    dpo2.init.hyper = dpo2.init.hyper | {"epochs": 31.0}
    assert dpo.key() != dpo2.key()  # a DPO adapter depends on the SFT adapter it starts from
