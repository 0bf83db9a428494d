"""A user's own instruct model, end to end: the stand-in (a hub-style folder with a trained 8k BPE
tokenizer, a Jinja chat template, an end-of-turn token distinct from EOS and a generation config listing
both) through the whole bench: SFT and DPO trained through the template, base / sft / dpo / rag
variants, the built-in judge, the report, bless and the gate."""

import json

import pytest
import yaml

from harness.builtin.standin import EOT, StandinSpec, build_standin
from tests.conftest import BASE, DROP, RAG, assert_input_error, invoke, micro, write_config

# Tuned from scratch on chat conversations over the reading pool of the micro suite's seed (names
# disjoint from the domain's): enough to end its turns with <|eot_id|>.
SPEC = StandinSpec(seed=3, pool_scale=3, domain_scale=4)
USER_HEADER = "<|start_header_id|>user<|end_header_id|>"

# The micro bench on a model folder (the stand-in): overrides of the micro config, and `model.path`.
INSTRUCT = micro(
    name="instruct",
    model={"builtin": DROP},
    generation={"max_new_tokens": 12},
    training={
        "sft": {"epochs": 6, "learning_rate": 3e-3, "batch_size": 8, "max_length": 256},
        "dpo": {"epochs": 1, "learning_rate": 1e-3, "batch_size": 8, "max_length": 256},
    },
    variants=[BASE, {"name": "sft", "adapter": "sft"}, {"name": "dpo", "adapter": "dpo"}, RAG],
    judge={
        "builtin": {"epochs": 1, "learning_rate": 3e-3, "batch_size": 16, "max_length": 256},
        "modes": ["grade"],
    },
)
GATE = {"blessed": "blessed.json", "rules": [{"variant": "rag", "metric": "f1", "margin": 0.0}]}


def _config(folder, model, **overrides):
    """INSTRUCT on `model`, written to `folder`/bench.yaml."""
    return write_config(folder, INSTRUCT, model={"path": str(model)}, **overrides)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return build_standin(tmp_path_factory.mktemp("standin") / "instruct-standin", SPEC)


def _invoke(*args):
    """`ragvft ARGS...`: its exit code (a clean exit, error or not: never a crash) and its output's words."""
    code, output = invoke(*args)
    return code, " ".join(output.split())


def test_standin_looks_like_a_hub_instruct_model(standin):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(standin)
    model = AutoModelForCausalLM.from_pretrained(standin)
    assert len(tok) >= 8000 and tok.chat_template
    eot, eos = tok.convert_tokens_to_ids(EOT), tok.eos_token_id
    assert eot != eos and sorted(model.generation_config.eos_token_id) == sorted([eos, eot])
    rendered = tok.apply_chat_template(
        [{"role": r, "content": r} for r in ("system", "user", "assistant")], tokenize=False
    )
    assert all(
        f"<|start_header_id|>{r}<|end_header_id|>" in rendered for r in ("system", "user", "assistant")
    )


def test_generation_stops_at_the_end_of_turn_token(standin):
    """The engine stops on every end token of the generation config: with <|eot_id|> listed, answers
    end there; with EOS alone the same model runs on past it (into the next turn's header)."""
    from harness.engines import Decoding, Request
    from harness.engines.hf import HFEngine
    from harness.prompts import PromptFormat

    engine = HFEngine(str(standin), batch_size=8)
    fmt = PromptFormat.of(engine.tokenizer)
    eot = engine.tokenizer.convert_tokens_to_ids(EOT)
    assert eot in engine.end_ids
    long = Decoding(max_new_tokens=24, stop=())  # no newline stop: the end token alone ends an answer
    prompts = [fmt.prompt(q, None) for q in ("Who leads the audit team?", "Where is the office of Tamor?")]
    stopped = engine.generate([Request(p, decoding=long) for p in prompts])
    engine._end_ids, engine._tables = [engine.tokenizer.eos_token_id], {}  # as if only EOS were listed
    ran_on = engine.generate([Request(p, decoding=long) for p in prompts])
    for a, b in zip(stopped, ran_on, strict=True):
        assert a.tokens_out < long.max_new_tokens  # it ended on its own
        assert b.tokens_out > a.tokens_out  # without the end-of-turn stop it goes on
        assert b.text.startswith(a.text)


def test_sft_rows_go_through_the_template_with_loss_on_the_answer(standin, tmp_path, cache_dir):
    """What TRL trains on: the conversational rows rendered by the model's template, the completion
    mask covering the assistant's answer and its end-of-turn token only."""
    from harness.artifacts import load_suite, resolve_model
    from harness.artifacts.adapters import adapter_job
    from harness.config import load_config

    config = load_config(_config(tmp_path, standin))
    suite = load_suite(config)
    base = resolve_model(config, {})
    assert base.prompt_format.chat and base.info["prompt_format"]["chat"] is True
    job = adapter_job(config, suite, base, "sft")
    row = job.rows[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"] and row["completion"][0][
        "role"
    ] == "assistant"

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(standin)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(standin),
        args=SFTConfig(output_dir=str(tmp_path / "t"), report_to="none", use_cpu=True, max_length=256),
        train_dataset=Dataset.from_list(job.rows[:4]),
        processing_class=tok,
        peft_config=LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    first = trainer.train_dataset[0]
    text = tok.decode(first["input_ids"])
    assert USER_HEADER in text and "<|start_header_id|>assistant<|end_header_id|>" in text
    assert text.count("<|begin_of_text|>") == 1  # the template's BOS, not a second one
    trained = tok.decode([t for t in first["labels"] if t != -100])  # TRL's labels: -100 is not trained
    assert trained.strip() == row["completion"][0]["content"] + EOT


def test_the_whole_bench_runs_on_an_instruct_model(standin, tmp_path, cache_dir):
    config = _config(tmp_path, standin)
    code, out = _invoke("bench", "--config", config)
    assert code == 0, out
    run = tmp_path / "runs" / "latest"
    rows = [json.loads(line) for line in (run / "results.jsonl").open()]
    assert {r["variant"] for r in rows} == {"base", "sft", "dpo", "rag"}
    for r in rows:  # the exact prompt the model saw: the template's turns, the question in the user's
        assert USER_HEADER in r["prompt"] and r["question"] in r["prompt"]
        assert r["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
        assert EOT not in r["answer"] and "assistant" not in r["answer"]
        assert r["tokens_out"] <= 12
    rag = [r for r in rows if r["variant"] == "rag"]
    assert all(r["retrieved_text"][0] in r["prompt"] for r in rag)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["model"]["prompt_format"]["chat"] is True
    assert manifest["judge"]["prompt_format"]["chat"] is True
    assert all("judge" in r["scores"] for r in rows)  # graded through the template (or said why not)
    answers = {v: [r["answer"] for r in rows if r["variant"] == v] for v in ("base", "sft")}
    assert answers["sft"] != answers["base"]  # the adapter, trained through the template, changed answers
    assert (run / "report.html").is_file()

    assert _invoke("bless", "--run", run, "--out", tmp_path / "blessed.json")[0] == 0
    _config(tmp_path, standin, gate=GATE)
    code, out = _invoke("bench", "--config", config)
    assert code == 0 and "gate passed: 1/1 rules" in out, out
    assert "generations computed 0" in out  # the rerun reused every answer


def test_forcing_a_template_on_a_tokenizer_without_one_is_one_line(tmp_path, cache_dir):
    config = write_config(tmp_path, model={"chat_template": True})
    bench = invoke("bench", "--config", config)  # below the bar of the base model it built
    assert_input_error(bench, "model.chat_template", "no chat template", bars=True, no_run_in=tmp_path)


def test_prompts_longer_than_the_context_are_cut_and_counted_never_silently(tmp_path, cache_dir):
    """The micro model's context is 256 tokens: a rag variant reading 30 passages overflows it."""
    config = write_config(tmp_path, variants=[BASE, RAG | {"k": 30}])
    code, out = _invoke("bench", "--config", config)
    assert code == 0, out
    manifest = json.loads((tmp_path / "runs" / "latest" / "manifest.json").read_text())
    cut = manifest["engine"]["details"]["truncated_prompts"]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "latest" / "results.jsonl").open()]
    assert cut == sum(r["variant"] == "rag" for r in rows) > 0  # every rag prompt, no closed-book one
    assert f"warning: {cut} prompts did not fit the model's context (256 tokens" in out
    assert all(r["tokens_in"] <= 256 - 6 for r in rows)


def test_the_readme_config_runs_as_written_on_the_standin(standin, tmp_path, cache_dir):
    """configs/instruct.yaml is the README's, byte for byte, and runs with only the model (the hub id,
    out of reach here, for the stand-in) and the domain's size changed."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "configs" / "instruct.yaml").read_text()
    assert text in (Path(__file__).parents[1] / "README.md").read_text()
    readme = yaml.safe_load(text)
    assert readme["model"]["path"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert readme["suite"]["builtin"] == {"seed": 7, "scale": 40}
    config = write_config(
        tmp_path, readme, model={"path": str(standin)}, suite={"builtin": {"seed": 3, "scale": 4}}
    )
    code, out = _invoke("bench", "--config", config)
    assert code == 0, out
    manifest = json.loads((tmp_path / "runs" / "latest" / "manifest.json").read_text())
    assert manifest["config"]["training"]["sft"]["lora_r"] == 16  # the model profile
    assert set(manifest["adapters"]) == {"sft", "dpo", "sft+rag"}
