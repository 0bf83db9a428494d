"""The built-in base model: built once under its key, loaded through from_pretrained like a hub model."""

import json
from dataclasses import replace

import pytest

from core.cache import building
from harness.builtin.basemodel import BUILD_RECORD, BaseModelSpec, build_base_model, curriculum

MICRO = BaseModelSpec(
    seed=5,
    pool_scale=3,
    domain_scale=4,
    hidden_size=32,
    intermediate_size=64,
    layers=1,
    heads=2,
    steps=12,
    batch_size=4,
    vocab_size=400,
)


def test_micro_model_builds_once_and_loads_with_from_pretrained(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_base_model(MICRO, root=tmp_path, progress=False)
    record = json.loads((folder / BUILD_RECORD).read_text())
    assert record["steps"] == 12 and record["key"] == MICRO.key() and record["tokens"] > 0
    stamp = (folder / BUILD_RECORD).stat().st_mtime_ns
    assert build_base_model(MICRO, root=tmp_path, progress=False) == folder  # cached: not rebuilt
    assert (folder / BUILD_RECORD).stat().st_mtime_ns == stamp

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    text = "Question: What is the price of the Zorvex T9?\nAnswer:"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level BPE round-trips
    out = model.generate(**tokenizer(text, return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape[1] > len(tokenizer(text)["input_ids"])

    # What loads is the trained model: on its own curriculum it beats the same architecture freshly
    # initialised with the same seed (a save of untrained weights, or a loop that never steps, fails).
    import torch
    from transformers import LlamaForCausalLM

    assert record["loss_curve"][-1]["loss"] < record["loss_curve"][0]["loss"]
    texts = [e["prompt"] + e["completion"] for e in curriculum(MICRO)[0][:32]]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    torch.manual_seed(MICRO.seed)
    fresh = LlamaForCausalLM(model.config)
    with torch.no_grad():
        trained_loss = model(**batch, labels=labels).loss.item()
        fresh_loss = fresh(**batch, labels=labels).loss.item()
    assert trained_loss < fresh_loss - 0.1, (trained_loss, fresh_loss)


def test_every_field_of_the_spec_is_in_the_key():
    """The cache key must change with every setting that changes the model (a field left out of the
    key would serve a stale model), and only with them."""
    from dataclasses import fields

    assert replace(MICRO).key() == MICRO.key()
    keys = {MICRO.key()}
    for f in fields(MICRO):
        value = getattr(MICRO, f.name)
        other = value + 1 if isinstance(value, int) else value + 0.01
        keys.add(replace(MICRO, **{f.name: other}).key())
    assert len(keys) == len(fields(MICRO)) + 1


def test_curriculum_answers_change_between_draws_so_reading_is_required():
    phase1, _ = curriculum(replace(MICRO, steps=200))
    reading = [e for e in phase1 if e["prompt"].startswith("Passages:")]
    by_question: dict[str, set[str]] = {}
    for e in reading:
        question = e["prompt"].split("Question: ")[1]
        by_question.setdefault(question, set()).add(e["completion"])
        assert e["completion"].strip() in e["prompt"]  # the answer is in the passage
    assert any(len(answers) > 1 for answers in by_question.values())


def test_failed_build_leaves_nothing_behind(tmp_path):
    final = tmp_path / "models" / "x"
    with pytest.raises(RuntimeError), building(final) as tmp:
        (tmp / "half-written").write_text("...")
        raise RuntimeError("killed")
    assert not final.exists() and list((tmp_path / "models").iterdir()) == []
