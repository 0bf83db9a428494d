"""Training settings for real models: the two profiles (the built-in recipe, a user's own model) under
the user's explicit settings, in the manifest too; max_length from the data; CPT windows that leave
no token out; full fine-tuning; gradient accumulation and checkpointing in the training record; and
4-bit quantisation refused in one line where it cannot run."""

import importlib.util
import itertools
import json
import math

import pytest

from harness.artifacts import adapter_job
from harness.config import load_config
from harness.engines import HFEngine
from harness.training import TRAINING_RECORD, ensure_adapter
from harness.training.cpt import cpt_windows, windows
from harness.training.dpo import DPOTraining
from harness.training.loading import max_length_of, row_tokens
from harness.training.sft import SFTTraining
from tests.conftest import (
    BASE,
    RAG,
    USERS_MODEL,
    assert_input_error,
    cli_bench,
    complete,
    tuned_job,
    write_config,
)

SFT = {"name": "sft", "adapter": "sft"}


def test_the_builtin_profile_keeps_the_builtin_recipe(tmp_path):
    config = load_config(write_config(tmp_path))
    assert config.training.profile_of(config.model) == "builtin"
    sft = config.training.hyper("sft", config.model)
    assert sft == SFTTraining()  # the class defaults: the built-in recipe as it always was
    assert (sft.epochs, sft.learning_rate, sft.lora_r, sft.batch_size, sft.max_length) == (
        40,
        3e-3,
        32,
        16,
        256,
    )
    assert (sft.gradient_accumulation_steps, sft.finetune) == (1, "lora")
    cpt = config.training.hyper("cpt", config.model)
    assert (cpt.epochs, cpt.learning_rate, cpt.window_overlap) == (30, 1e-3, 0)


def test_a_users_model_gets_the_model_profile_and_explicit_settings_win(tmp_path):
    config = load_config(write_config(tmp_path, USERS_MODEL))
    assert config.training.profile_of(config.model) == "model"
    sft = config.training.hyper("sft", config.model)
    assert (sft.lora_r, sft.lora_alpha, sft.lora_dropout, sft.learning_rate, sft.epochs) == (
        16,
        32,
        0.05,
        2e-4,
        3,
    )
    assert (sft.batch_size, sft.gradient_accumulation_steps, sft.gradient_checkpointing) == (4, 4, True)
    assert sft.max_length is None  # from the data
    dpo = config.training.hyper("dpo", config.model)
    assert dpo.learning_rate == DPOTraining.MODEL["learning_rate"] < sft.learning_rate
    assert config.training.hyper("cpt", config.model).max_length == 1024

    given = {"sft": {"lora_r": 8, "epochs": 1, "max_length": 64}, "dpo": {"finetune": "full"}}
    config = load_config(write_config(tmp_path, USERS_MODEL, training=given))
    sft = config.training.hyper("sft", config.model)
    assert (sft.lora_r, sft.epochs, sft.max_length) == (8, 1, 64)  # as given
    assert (sft.lora_alpha, sft.learning_rate, sft.batch_size) == (32, 2e-4, 4)  # the profile's
    dpo = config.training.hyper("dpo", config.model)
    assert dpo.finetune == "full" and dpo.learning_rate == DPOTraining.FULL_LEARNING_RATE

    # The profile named outright, either way round.
    config = load_config(write_config(tmp_path, USERS_MODEL, training={"profile": "builtin"}))
    assert config.training.hyper("sft", config.model) == SFTTraining()
    config = load_config(write_config(tmp_path, training={"profile": "model", "sft": {"lora_r": 4}}))
    sft = config.training.hyper("sft", config.model)
    assert (sft.lora_r, sft.learning_rate, sft.epochs) == (4, 2e-4, 3)


def test_the_manifest_records_the_settings_used(tmp_path):
    path = write_config(
        tmp_path,
        USERS_MODEL,
        variants=[BASE, {"name": "dpo", "adapter": "dpo"}, {"name": "cpt", "adapter": "cpt"}, RAG],
        training={"cpt": {"epochs": 5}},
        judge={"builtin": {"lora_r": 4}},
    )
    config = load_config(path)
    training = config.manifest_dump()["training"]
    assert training["profile"] == "auto" and training["quantization"] == "none"
    assert training["sft"] == config.training.hyper("sft", config.model).settings()  # DPO starts from it
    assert (
        training["sft"]["lora_r"] == 16 and training["dpo"]["epochs"] == 2 and training["cpt"]["epochs"] == 5
    )
    judge = config.manifest_dump()["judge"]["builtin"]
    assert judge["lora_r"] == 4 and judge["learning_rate"] == 2e-4


def test_max_length_comes_from_the_longest_row_capped_at_the_context(micro_base, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    config, suite, base = micro_base
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    model = AutoModelForCausalLM.from_pretrained(base.path)
    rows = adapter_job(config, suite, base, "sft").rows
    longest = max(row_tokens(r, tokenizer) for r in rows)
    assert max_length_of(None, rows, tokenizer, model) == (longest, "data")
    assert max_length_of(100, rows, tokenizer, model) == (100, "config")
    long_doc = [{"text": " ".join(suite.training.documents)}]
    assert max_length_of(None, long_doc, tokenizer, model) == (
        model.config.max_position_embeddings,
        "model context",
    )

    # The count is TRL's: the longest sequence SFTTrainer builds from the rows, raw and chat alike.
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    chat = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "completion": [{"role": "assistant", "content": a}],
        }
        for r, a in zip(rows, ("short", "a rather longer answer than the others"), strict=False)
    ]
    from datasets import Dataset

    for data in (rows, chat):
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(
                output_dir=str(tmp_path),
                max_length=None,
                activation_checkpointing=False,
                use_cpu=True,
                report_to="none",
            ),
            train_dataset=Dataset.from_list(data),
            processing_class=tokenizer,
        )
        built = max(len(ids) for ids in trainer.train_dataset["input_ids"])
        assert max(row_tokens(r, tokenizer) for r in data) == built


def test_windows_cover_every_token():
    ids = list(range(1000))
    cut = windows(ids, 256, 32)
    assert len(cut) == 1 + math.ceil((1000 - 256) / (256 - 32)) == 5
    assert all(len(w) <= 256 for w in cut) and cut[0][0] == 0 and cut[-1][-1] == 999
    assert sorted({t for w in cut for t in w}) == ids  # every token, in windows that overlap by 32
    assert all(a[-32:] == b[:32] for a, b in itertools.pairwise(cut))
    assert windows(ids[:10], 256, 32) == [ids[:10]]
    assert len(windows(ids, 100, 0)) == 10


def test_cpt_trains_on_windows_of_every_document(micro_base):
    _, suite, base = micro_base
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.path)
    doc = " ".join(suite.training.documents)  # longer than the model's context
    n = len(tokenizer(doc)["input_ids"]) + 1  # with the end-of-sequence token
    rows, facts = cpt_windows([{"text": doc}], tokenizer, 64, {"window_overlap": 8})
    assert facts == {"documents": 1, "document_tokens": n, "windows": 1 + math.ceil((n - 64) / 56)}
    assert rows[-1]["input_ids"][-1] == tokenizer.eos_token_id

    job = tuned_job(micro_base, "cpt", epochs=1.0, batch_size=8, max_length=24, window_overlap=4)
    assert job.rows == [{"text": d} for d in suite.training.documents]  # the key's rows: the documents
    rec = ensure_adapter(job, progress=False).record
    assert rec["max_length"] == 24 and rec["max_length_from"] == "config"
    assert rec["documents"] == len(job.rows) < rec["windows"]
    assert rec["steps"] == math.ceil(rec["windows"] / 8)


def test_accumulation_and_checkpointing_show_in_the_record(micro_base):
    job = tuned_job(
        micro_base,
        "sft",
        epochs=1.0,
        batch_size=4,
        gradient_accumulation_steps=2,
        gradient_checkpointing=True,
        max_length=None,
    )
    rec = ensure_adapter(job, progress=False).record
    assert rec["effective_batch_size"] == 8 and rec["gradient_checkpointing"] is True
    assert rec["steps"] == math.ceil(math.ceil(len(job.rows) / 4) / 2)
    assert rec["max_length_from"] == "data" and rec["max_length"] < 256
    assert rec["finetune"] == "lora" and rec["quantization"] == "none" and rec["peak_memory_mb"] > 0


def test_a_full_fine_tune_saves_a_whole_model_that_answers_otherwise(micro_base):
    from transformers import AutoModelForCausalLM

    _, _, base = micro_base
    job = tuned_job(
        micro_base,
        "sft",
        finetune="full",
        epochs=8.0,
        learning_rate=1e-2,
        batch_size=8,
        gradient_checkpointing=False,
    )
    full = ensure_adapter(job, progress=False)
    assert full.kind == "full" and full.manifest()["kind"] == "full"
    assert not (full.path / "adapter_config.json").exists() and (full.path / "tokenizer.json").is_file()
    rec = json.loads((full.path / TRAINING_RECORD).read_text())
    model = AutoModelForCausalLM.from_pretrained(full.path)
    assert rec["finetune"] == "full" and rec["trainable_parameters"] == model.num_parameters()
    assert rec["gradient_checkpointing"] is False
    prompts = [r["prompt"] for r in job.rows]
    tuned = complete(HFEngine(str(full.path), batch_size=16), prompts)
    assert tuned != complete(HFEngine(base.path, batch_size=16), prompts)


def test_a_full_dpo_starts_from_the_sft_adapter_merged(micro_base):
    job = tuned_job(micro_base, "dpo", finetune="full", epochs=1.0, batch_size=8, learning_rate=1e-4)
    job.init.hyper = job.init.hyper | {"epochs": 1.0, "batch_size": 8}
    dpo = ensure_adapter(job, progress=False)
    assert dpo.kind == "full" and dpo.record["init_method"] == "sft" and dpo.record["reward_curve"]


@pytest.mark.parametrize(
    "training, cuda, words",
    [
        ({"quantization": "4bit"}, "cpu", "needs a CUDA GPU"),
        ({"quantization": "4bit", "sft": {"finetune": "full"}}, "cuda", "sft has finetune: full"),
        ({"quantization": "4bit"}, "cuda", "bitsandbytes"),
    ],
)
def test_4bit_where_it_cannot_run_is_one_line_before_training(
    tmp_path, cache_dir, monkeypatch, training, cuda, words
):
    if words == "bitsandbytes" and importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    # Only the check sees this device: the run up to it (and its dtype checks) sees the real one.
    monkeypatch.setattr("harness.artifacts.adapters.torch_device", lambda: cuda)
    result = cli_bench(tmp_path, variants=[BASE, SFT, RAG], training=training)
    assert_input_error(result, "training.quantization", words, no_run_in=tmp_path)


def test_a_window_overlap_beyond_the_window_is_one_line(tmp_path, cache_dir):
    cpt = {"name": "cpt", "adapter": "cpt"}
    result = cli_bench(tmp_path, variants=[BASE, cpt, RAG], training={"cpt": {"window_overlap": 300}})
    words = "window_overlap (300) must be below max_length (256)"
    assert_input_error(result, "training.cpt", words, no_run_in=tmp_path)


def test_a_bench_generates_a_full_fine_tune_on_its_own_weights(tmp_path, cache_dir):
    """A variant fully fine-tuned has no adapter to switch on the shared base: it generates on its own
    weights (loaded after the others), and its answers are the saved model's."""
    import json as _json

    result = cli_bench(
        tmp_path,
        variants=[BASE, SFT, {"name": "sft+rag", "adapter": "sft", "retriever": "bm25", "k": 2}, RAG],
        training={"sft": {"finetune": "full", "epochs": 4, "learning_rate": 1e-3}},
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    rows = [_json.loads(line) for line in (run / "results.jsonl").open()]
    manifest = _json.loads((run / "manifest.json").read_text())
    sft = manifest["adapters"]["sft"]
    assert sft["kind"] == "full"
    answers = {v: [r["answer"] for r in rows if r["variant"] == v] for v in ("base", "sft")}
    assert answers["sft"] != answers["base"]
    prompts = [r["prompt"] for r in rows if r["variant"] == "sft"]
    assert complete(HFEngine(sft["path"], batch_size=16), prompts, max_new_tokens=6) == answers["sft"]
