"""Where each kind plugs in: a training method and a scorer are one registry entry each (added here,
from inside the test, and run through a micro bench); the engine is named in the config, recorded in
the manifest and part of every generation key."""

import json

from typer.testing import CliRunner

from core.device import resolve_dtype
from harness.cli import app
from harness.config import load_config
from harness.engines import ENGINES, Decoding, EngineKind, HFEngine
from harness.run import bench
from harness.run.plan import generation_key
from harness.training import METHODS, AdapterTraining, TrainingMethod
from harness.training.sft import sft_trainer
from judges import SCORERS, Answer, Score, Scorer
from tests.conftest import BASE, RAG, assert_input_error, write_config


class ToyTraining(AdapterTraining):
    """A toy method's settings: defaults fit the micro model."""

    epochs: float = 30.0
    learning_rate: float = 1e-2
    batch_size: int = 8


def _toy_rows(suite, hyper, seed, fmt):
    """Closed-book prompts and their answers, in the base model's prompt format (TRL's rows)."""
    return [fmt.completion_row(p.question, p.answer) for p in suite.training.sft]


def _words(a: Answer) -> Score:
    n = len(a.answer.split())
    return Score("words", float(n), f"{n} words")


def test_a_training_method_and_a_scorer_added_by_registry_entry_run_through_a_bench(
    tmp_path, cache_dir, monkeypatch
):
    monkeypatch.setitem(METHODS, "toy", TrainingMethod("toy", ToyTraining, _toy_rows, sft_trainer))
    monkeypatch.setitem(SCORERS, "words", Scorer("words", "graded", _words, higher_is_better=False))
    path = write_config(
        tmp_path,
        metrics=["em", "f1", "words"],
        training={"toy": {"epochs": 40}},
        variants=[{"name": "toy", "adapter": "toy"}, BASE, RAG],
    )
    result = bench(load_config(path))

    adapter = result.manifest["adapters"]["toy"]
    assert adapter["training"]["method"] == "toy"
    assert (
        adapter["training"]["hyperparameters"]["epochs"] == 40
    )  # the config's setting, validated by ToyTraining
    assert adapter["training"]["hyperparameters"]["learning_rate"] == 1e-2  # ToyTraining's default
    assert result.manifest["cache"]["adapters_trained"] == ["toy"]
    assert result.summary["adapter_checks"]["toy"]["inert"] is False  # the adapter changed the answers

    rows = [r for r in result.rows if r["variant"] == "toy"]
    words = [len(r["answer"].split()) for r in rows]
    assert [r["scores"]["words"]["value"] for r in rows] == words
    assert abs(result.summary["variants"]["toy"]["words"]["mean"] - sum(words) / len(words)) < 1e-12
    assert result.summary["metric_info"]["words"]["higher_is_better"] is False
    changed = [
        r
        for r, b in zip(rows, (r for r in result.rows if r["variant"] == "base"), strict=True)
        if r["answer"] != b["answer"]
    ]
    assert changed  # the toy adapter's answers are its own


def test_an_unknown_method_or_metric_is_a_config_error_at_load(tmp_path):
    for overrides, field in [
        ({"variants": [BASE | {"adapter": "sfft"}, RAG]}, "variants.0.adapter"),
        ({"metrics": ["em", "f11"]}, "metrics"),
        ({"training": {"dpp": {}}}, "training.dpp"),
        ({"training": {"sft": {"epochs": -1}}}, "training.sft.epochs"),
        ({"generation": {"engine": "vlm"}}, "generation.engine"),
    ]:
        path = write_config(tmp_path, **overrides)
        out = CliRunner().invoke(app, ["bench", "--config", str(path)])
        assert_input_error(out, f"{path}:", field)
    assert not (tmp_path / "runs").exists()  # nothing written


def test_engine_and_dtype_are_in_every_generation_key_and_the_manifest(tmp_path, cache_dir, monkeypatch):
    d = Decoding(max_new_tokens=6)
    key = {"model": "m", "adapter": None, "prompt": "Question: q\nAnswer:", "decoding": d}
    hf = generation_key(**key, engine={"engine": "hf", "dtype": "auto", "device": "cpu"})
    assert hf != generation_key(**key, engine={"engine": "hf", "dtype": "float32", "device": "cpu"})
    assert hf != generation_key(**key, engine={"engine": "vllm", "dtype": "auto", "device": "cpu"})
    assert hf != generation_key(**key, engine={"engine": "hf", "dtype": "auto", "device": "cuda"})
    assert hf == generation_key(**key, engine={"engine": "hf", "dtype": "auto", "device": "cpu"})

    path = write_config(tmp_path)
    first = bench(load_config(path))
    assert first.manifest["engine"]["engine"] == "hf" and first.manifest["engine"]["dtype"] == "auto"
    assert first.manifest["config"]["generation"]["engine"] == "hf"
    n = len(first.rows)

    write_config(tmp_path, model={"dtype": "float32"})
    fp32 = bench(load_config(path))
    assert fp32.manifest["engine"]["dtype"] == "float32"
    assert fp32.manifest["cache"]["generations_computed"] == n  # nothing reused from the other dtype
    if resolve_dtype("auto") == "float32":  # on a CPU, or a GPU without bfloat16: the same weights
        assert [r["answer"] for r in fp32.rows] == [r["answer"] for r in first.rows]

    # Another engine kind (here the HF engine under a second name) recomputes everything too.
    monkeypatch.setitem(
        ENGINES,
        "hf2",
        EngineKind(HFEngine, lambda dtype, options: {"engine": "hf2", "dtype": dtype, "device": "cpu"}),
    )
    write_config(tmp_path, generation={"engine": "hf2"})
    other = bench(load_config(path))
    assert other.manifest["engine"]["engine"] == "hf2"
    assert other.manifest["cache"]["generations_computed"] == n
    assert json.loads((other.run_dir / "manifest.json").read_text())["engine"]["engine"] == "hf2"


def test_the_hf_engine_reads_chat_messages_through_the_tokenizer_template(micro_base):
    """A request may carry chat messages instead of a prompt: the engine renders them with the
    tokenizer's own chat template, and refuses them when the tokenizer has none."""
    import pytest

    from harness.engines import Request

    engine = HFEngine(micro_base[2].path, batch_size=8)
    text = "Question: What is the price of the Zorvex T9?\nAnswer:"
    chat = Request(messages=({"role": "user", "content": text},), decoding=Decoding(max_new_tokens=6))
    with pytest.raises(ValueError, match="chat template"):
        engine.generate([chat])
    engine.tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    by_chat, by_text = engine.generate([chat, Request(text, decoding=Decoding(max_new_tokens=6))])
    assert (by_chat.text, by_chat.tokens_in) == (by_text.text, by_text.tokens_in)
    with pytest.raises(ValueError, match="exactly one"):
        Request(prompt=text, messages=chat.messages)
