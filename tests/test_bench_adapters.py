"""The bench's fine-tuning arms: adapters trained when missing, reported, cached, retrained one at a
time, and flagged when they change nothing."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_config
from harness.run import bench
from tests.conftest import BASE, BENCH_SFT, RAG, assert_input_error, write_config

ADAPTERS = [
    {"name": "sft", "adapter": "sft"},
    {"name": "sft+rag", "adapter": "sft", "retriever": "bm25", "k": 2},
    {"name": "dpo", "adapter": "dpo"},
]
TRAINING = {"sft": BENCH_SFT, "dpo": {"epochs": 2, "learning_rate": 5e-3, "batch_size": 8}}


def test_bench_trains_missing_adapters_once_and_retrains_only_what_was_removed(tmp_path, cache_dir):
    path = write_config(tmp_path, seed=11, variants=[BASE, RAG, *ADAPTERS], training=TRAINING)
    first = bench(load_config(path))
    assert first.manifest["cache"]["adapters_trained"] == ["dpo", "sft"]
    assert set(first.summary["variants"]) == {"base", "rag", "sft", "sft+rag", "dpo"}
    adapters = first.manifest["adapters"]
    assert adapters["sft"]["source"] == "trained" and adapters["dpo"]["source"] == "trained"
    assert adapters["sft"]["identity"] == adapters["sft+rag"]["identity"]  # one adapter, two variants
    assert adapters["dpo"]["training"]["init"] == adapters["sft"]["identity"].split(":")[1]
    assert adapters["sft"]["config"]["weights_sha256"]
    checks = first.summary["adapter_checks"]
    assert checks["sft"]["compared_with"] == "base" and checks["sft+rag"]["compared_with"] == "rag"
    assert not checks["sft"]["inert"]
    html = (first.run_dir / "report.html").read_text()
    assert 'id="adapters"' in html and 'id="matrix"' in html and "trained now" in html

    second = bench(load_config(path))
    assert second.manifest["cache"]["adapters_trained"] == []
    assert second.manifest["cache"]["adapters_cached"] == ["dpo", "sft"]
    assert second.manifest["cache"]["generations_computed"] == 0
    assert [r["answer"] for r in second.rows] == [r["answer"] for r in first.rows]

    shutil.rmtree(adapters["sft"]["path"])
    dpo_weights = Path(adapters["dpo"]["path"]) / "adapter_model.safetensors"
    before = dpo_weights.read_bytes()
    third = bench(load_config(path))
    assert third.manifest["cache"]["adapters_trained"] == ["sft"]
    assert third.manifest["adapters"]["dpo"]["source"] == "cached"
    assert dpo_weights.read_bytes() == before
    # CPU training is deterministic: the retrained adapter is the same adapter.
    assert third.manifest["adapters"]["sft"]["config"] == adapters["sft"]["config"]


def test_an_adapter_that_changes_nothing_is_flagged(tmp_path, micro_base):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    _, _, base = micro_base
    model = AutoModelForCausalLM.from_pretrained(base.path)
    noop = tmp_path / "noop-adapter"  # LoRA's B starts at zero: a real adapter that does nothing
    get_peft_model(
        model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM")
    ).save_pretrained(noop)
    path = write_config(tmp_path, variants=[BASE, RAG, {"name": "noop", "adapter_path": "noop-adapter"}])
    result = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "noop answered exactly as base on every question" in " ".join(result.output.split())
    summary = json.loads((tmp_path / "runs" / "latest" / "summary.json").read_text())
    assert summary["adapter_checks"]["noop"] == {
        "compared_with": "base",
        "identical": 20,
        "n": 20,
        "inert": True,
    }
    manifest = json.loads((tmp_path / "runs" / "latest" / "manifest.json").read_text())
    assert manifest["adapters"]["noop"]["source"] == "path"
    assert "Adapters that changed nothing" in (tmp_path / "runs" / "latest" / "report.html").read_text()


def test_adapter_config_errors_name_file_line_and_field(tmp_path, cache_dir):
    cases = [
        (
            {"name": "x", "adapter": "sfd"},
            "variants.2.adapter",
            "unknown training method 'sfd' (did you mean 'sft'?)",
        ),
        ({"name": "x", "adapter_path": "nowhere"}, "variants.2.adapter_path", "not a PEFT adapter folder"),
        ({"name": "x", "adapter": "sft", "adapter_path": "nowhere"}, "variants.2", "at most one"),
    ]
    for variant, field, message in cases:
        path = write_config(tmp_path, variants=[BASE, RAG, variant])
        result = CliRunner().invoke(app, ["bench", "--config", str(path)])
        assert_input_error(result, f"{path}:", field, message, no_run_in=tmp_path)
