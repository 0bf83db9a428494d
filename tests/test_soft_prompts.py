"""Soft prompts (PEFT prompt tuning and prefix tuning, TRL's `SFTTrainer` on SFT's rows): each trains
on the micro model in seconds with its built-in defaults and changes its answers; in a bench each
generates alone on an engine of its own on the base (PEFT holds no soft prompt beside LoRA adapters)
through `generate`, while SFT's LoRA keeps the shared engine; the forgetting check runs them the same
way; and what cannot run (a LoRA setting, a server engine, 4-bit, checkpointed prefix tuning) is one
line before anything trains."""

import json

import pytest

from harness.config import load_config
from harness.engines import HFEngine
from harness.training import ensure_adapter
from tests.conftest import (
    BASE,
    RAG,
    USERS_MODEL,
    assert_input_error,
    cli_bench,
    complete,
    micro,
    tuned_job,
    write_config,
)

SOFT = {"prompt_tuning": "PROMPT_TUNING", "prefix_tuning": "PREFIX_TUNING"}
SOFT_VARIANTS = [{"name": m, "adapter": m} for m in SOFT]
WITH_SOFT = micro(variants=[BASE, {"name": "sft", "adapter": "sft"}, *SOFT_VARIANTS, RAG])
QUICK_SFT = {"epochs": 6, "learning_rate": 1e-2, "gradient_checkpointing": False}


@pytest.mark.parametrize("method", SOFT)
def test_a_soft_prompt_trains_with_its_defaults_and_changes_the_answers(micro_base, method):
    base = micro_base[2]
    job = tuned_job(micro_base, method)  # the built-in profile's defaults, as a bench trains them
    assert job.hyper["finetune"] == "prompt" and "lora_r" not in job.hyper
    adapter = ensure_adapter(job, progress=False)
    assert adapter.kind == "prompt" and adapter.manifest()["kind"] == "prompt"
    assert adapter.config["peft_type"] == SOFT[method] and adapter.config["num_virtual_tokens"] == 20
    rec = adapter.record
    assert rec["method"] == method and rec["finetune"] == "prompt" and rec["steps"] == 20  # 14 rows, 1 a step
    curve = [e["loss"] for e in rec["loss_curve"]]
    # 2.86 -> 2.64 (prompt tuning at 3e-2 on the micro base read against the shipped pool; 2.48 on the
    # micro base of a suite-seeded pool, 3.3 -> 2.5 before that) or 2.3 (prefix)
    assert rec["final_loss"] < curve[0] - 0.15
    assert rec["gradient_checkpointing"] is (method == "prompt_tuning")  # prefix tuning: off, must be
    hidden = 32  # the micro model's: 20 input embeddings, or 20 keys and values at its one layer
    assert rec["trainable_parameters"] == 20 * hidden * (1 if method == "prompt_tuning" else 2)

    prompts = [r["prompt"] for r in job.rows]
    engine = HFEngine(base.path, batch_size=16)
    before = complete(engine, prompts)
    engine.add_adapter("soft", adapter.path)
    assert engine.reference and engine.virtual_tokens == 20  # PEFT's `generate` decodes it
    assert engine.context == 256 - 20  # the virtual tokens take their places in the context
    tuned = complete(engine, prompts, "soft")
    assert sum(a != b for a, b in zip(before, tuned, strict=True)) >= len(prompts) // 2
    alone = HFEngine(base.path, batch_size=1)  # each prompt alone: no padding in any batch
    alone.add_adapter("soft", adapter.path)
    assert complete(alone, prompts, "soft") == tuned  # batched answers do not depend on the batch
    assert complete(engine, prompts) == before  # the base, its adapter off, answers as before


def test_soft_prompts_generate_apart_and_sft_keeps_the_shared_engine(tmp_path, cache_dir, micro_base):
    forgetting = {"tasks": ["builtin_reading"], "limit": 4}
    result = cli_bench(tmp_path, WITH_SOFT, training={"sft": QUICK_SFT}, forgetting=forgetting)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    manifest = json.loads((run / "manifest.json").read_text())
    adapters = manifest["adapters"]
    assert adapters["sft"]["kind"] == "lora" and adapters["sft"]["config"]["peft_type"] == "LORA"
    for m, peft_type in SOFT.items():
        assert adapters[m]["kind"] == "prompt" and adapters[m]["config"]["peft_type"] == peft_type
    rows = [json.loads(line) for line in (run / "results.jsonl").open()]
    answers = {v: [r["answer"] for r in rows if r["variant"] == v] for v in ("base", "sft", *SOFT)}
    for v in ("sft", *SOFT):
        assert answers[v] and answers[v] != answers["base"], v
    assert answers["prompt_tuning"] != answers["prefix_tuning"]

    # Each soft prompt's answers are its own engine's: the base with that one adapter, through generate
    prompts = [r["prompt"] for r in rows if r["variant"] == "base"]
    base = micro_base[2].path  # the run's base: the same built-in spec, from the same cache
    for m in SOFT:
        engine = HFEngine(base, batch_size=16)
        engine.add_adapter("soft", adapters[m]["path"])
        assert complete(engine, prompts, "soft", max_new_tokens=6) == answers[m], m
    with pytest.raises(ValueError, match="loaded alone"):  # never beside a LoRA: PEFT cannot mix them
        engine.add_adapter("sft", adapters["sft"]["path"])

    forgetting = json.loads((run / "summary.json").read_text())["forgetting"]
    assert set(forgetting["tasks"]["builtin_reading"]) == {"base", "sft", *SOFT}
    assert sum(forgetting["runs"].values()) == 4  # builtin_reading on base, sft and the two soft prompts


def _adapters(cache_dir) -> set[str]:
    return (
        {p.name for p in (cache_dir / "adapters").glob("*")} if (cache_dir / "adapters").is_dir() else set()
    )


@pytest.mark.parametrize(
    "training, words",
    [
        ({"prompt_tuning": {"lora_r": 8}}, "training.prompt_tuning.lora_r is a LoRA setting"),
        ({"prefix_tuning": {"target_modules": "all-linear"}}, "training.prefix_tuning.target_modules"),
        ({"prompt_tuning": {"finetune": "full"}}, "training.prompt_tuning.finetune: full"),
        (
            {"prefix_tuning": {"gradient_checkpointing": True}},
            "training.prefix_tuning.gradient_checkpointing",
        ),
    ],
)
def test_a_lora_setting_on_a_soft_prompt_is_one_line_before_training(tmp_path, cache_dir, training, words):
    before = _adapters(cache_dir)
    result = cli_bench(tmp_path, variants=[BASE, *SOFT_VARIANTS, RAG], training=training)
    assert_input_error(result, words, no_run_in=tmp_path)
    assert _adapters(cache_dir) == before  # nothing trained


@pytest.mark.parametrize(
    "generation",
    [
        {"engine": "vllm", "max_new_tokens": 6},
        {"engine": "openai", "openai": {"base_url": "http://127.0.0.1:9/v1"}, "max_new_tokens": 6},
    ],
)
def test_a_soft_prompt_on_a_server_engine_is_one_line_before_training(tmp_path, cache_dir, generation):
    before = _adapters(cache_dir)
    result = cli_bench(tmp_path, WITH_SOFT | {"generation": generation})  # the whole section
    engine = "vllm" if generation["engine"] == "vllm" else "openai"
    assert_input_error(
        result,
        "variant 'prompt_tuning'",
        f"generation.engine {engine}",
        "set generation.engine: hf",
        no_run_in=tmp_path,
    )
    assert _adapters(cache_dir) == before  # nothing trained, not even SFT's LoRA before it

    # a soft-prompt folder the config names, likewise (its adapter_config.json says what it is)
    folder = tmp_path / "soft"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "PREFIX_TUNING"}))
    mine = micro(variants=[BASE, {"name": "mine", "adapter_path": "soft"}, RAG]) | {"generation": generation}
    result = cli_bench(tmp_path, mine)
    assert_input_error(
        result, "variant 'mine' is a soft prompt", "variants.1.adapter_path", no_run_in=tmp_path
    )


def test_4bit_with_a_soft_prompt_is_one_line(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr("harness.artifacts.adapters.torch_device", lambda: "cuda")
    pt = {"name": "pt", "adapter": "prompt_tuning"}
    result = cli_bench(tmp_path, variants=[BASE, pt, RAG], training={"quantization": "4bit"})
    assert_input_error(
        result, "training.quantization", "prompt_tuning trains a soft prompt", no_run_in=tmp_path
    )


def test_a_users_model_gets_the_soft_prompt_model_profile(tmp_path):
    config = load_config(write_config(tmp_path, USERS_MODEL))
    for m in SOFT:
        hyper = config.training.hyper(m, config.model)
        assert (hyper.epochs, hyper.learning_rate, hyper.num_virtual_tokens, hyper.batch_size) == (
            10,
            3e-2,
            20,
            4,
        )
        assert hyper.problem() is None  # the profile sets no LoRA setting
    assert config.training.hyper("prefix_tuning", config.model).gradient_checkpointing is False
