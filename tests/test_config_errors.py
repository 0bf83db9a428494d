"""Bad configuration: one line naming file, line and field; exit code 2; nothing written. The configs
whose error lines are checked are the micro config's text edited, so that each line is known."""

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from harness.cli import app
from harness.config import load_config
from tests.conftest import BASE, MICRO_CONFIG, RAG, assert_input_error, write_config

GEN = "generation: {max_new_tokens: 6, batch_size: 16}"


def _write(tmp_path, text):
    path = tmp_path / "bench.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "edit, line, field, words",
    [
        (("retriever: bm25", "retriever: bm52"), 13, "variants.1.retriever", "did you mean 'bm25'"),
        (("k: 2", "k: 0"), 14, "variants.1.k", "greater than or equal to 1"),
        (("k: 2", "k: two"), 14, "variants.1.k", "valid integer"),
        (("baseline: base", "baseline: bsae"), 15, "baseline", "did you mean 'base'"),
        (
            ("metrics: [em, f1]", "metrics: [em, f2]"),
            16,
            "metrics.1",
            "unknown metric 'f2' (choices: accuracy, em, f1, macro_f1, match)",
        ),
        (("generation:", "generaton:"), 7, "generaton", "unknown field"),
        (("  - name: rag", "  - name: base"), 12, "variants.1.name", "duplicate variant 'base'"),
        ((GEN, "generation: {engine: vlm}"), 7, "generation.engine", "did you mean 'vllm'"),
        ((GEN, "generation: {engine: openai}"), 7, "generation", "engine openai needs `generation.openai`"),
        (
            (GEN, "generation: {engine: openai, openai: {base_url: ftp://h}}"),
            7,
            "generation.openai.base_url",
            "not an http(s) URL",
        ),
        ((GEN, "generation: {vllm: {max_model_len: 256}}"), 7, "generation", "set engine: vllm"),
        (
            (GEN, "generation: {engine: vllm, vllm: {max_lora_rank: big}}"),
            7,
            "generation.vllm.max_lora_rank",
            "auto",
        ),
        ((GEN, "generation: {ray: {workers: 0}}"), 7, "generation.ray.workers", "greater than or equal to 1"),
        ((GEN, "generation: {dtype: float32}"), 7, "generation", "moved to model.dtype"),
        (("model:\n", "model:\n  dtype: float64\n"), 6, "model.dtype", "unknown dtype 'float64'"),
        (
            ("model:\n", "model:\n  device_map: balanced\n"),
            6,
            "model.device_map",
            "'balanced' is neither null",
        ),
    ],
)
def test_bad_field_names_file_line_and_field(tmp_path, edit, line, field, words):
    path = _write(tmp_path, MICRO_CONFIG.replace(*edit))
    with pytest.raises(InputError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert words in message
    assert "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = _write(tmp_path, MICRO_CONFIG.replace("k: 2", "k: [2"))
    with pytest.raises(InputError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:15: YAML syntax error")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_non_utf8_config(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_config(path)


def test_cli_exits_2_with_one_line_and_writes_nothing(tmp_path):
    path = write_config(tmp_path, variants=[BASE, RAG | {"retriever": "bm52"}])
    result = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert assert_input_error(result).startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.yaml"]


def test_a_dtype_the_device_cannot_run_exits_2_before_anything_loads(tmp_path, monkeypatch):
    """bfloat16 on a GPU without it (faked here): one line naming model.dtype, before the base model
    is built or loaded, and nothing written."""
    import torch

    import harness.artifacts.model

    def never(*args, **kwargs):
        raise AssertionError("the base model was built before the dtype was checked")

    monkeypatch.setattr(harness.artifacts.model, "build_base_model", never)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    path = write_config(tmp_path, model={"dtype": "bfloat16"})
    result = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert assert_input_error(result) == (
        f"error: {path}: model.dtype: this GPU does not support bfloat16: use float16, float32 or auto"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.yaml"]


def test_yaml_is_read_with_the_safe_loader(tmp_path):
    """An unsafe loader would run the command (and create the marker file) before any validation."""
    marker = tmp_path / "pwned"
    path = _write(tmp_path, f"name: x\nseed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert not marker.exists()
    assert err.value.line == 2 and "python/object/apply" in err.value.message


def test_paths_are_resolved_against_the_config_folder_once(tmp_path):
    """Every path field comes out absolute against the config's folder, defaults included; a training
    method's own path field (training.kto.feedback) too, its other settings left as given."""
    folder = tmp_path / "configs"
    folder.mkdir()
    rules = [{"variant": "rag", "metric": "em", "margin": 0.1}]
    path = write_config(
        folder,
        gate={"blessed": "../blessed.json", "rules": rules},
        training={"kto": {"feedback": "fb.jsonl"}},
    )
    config = load_config(path)
    assert config.gate.blessed == str(tmp_path / "blessed.json")
    assert config.runs_dir == str(folder / "runs")
    kto = config.training.model_extra["kto"]
    assert kto.feedback == str(folder / "fb.jsonl") and kto.model_fields_set == {"feedback"}


def test_gate_baseline_is_the_old_name_of_gate_blessed(tmp_path, capsys):
    """The old key still works, with one notice naming the file and the new key, once per file."""
    rules = [{"variant": "rag", "metric": "em", "margin": 0.1}]
    path = write_config(tmp_path, gate={"baseline": "old.json", "rules": rules})
    assert load_config(path).gate.blessed == str(tmp_path / "old.json")
    assert load_config(path).gate.blessed == str(tmp_path / "old.json")
    notices = capsys.readouterr().err.strip().splitlines()
    assert len(notices) == 1 and str(path) in notices[0] and "gate.blessed" in notices[0]
    both = write_config(tmp_path, gate={"baseline": "old.json", "blessed": "new.json", "rules": rules})
    with pytest.raises(InputError, match="gate.baseline: unknown field"):
        load_config(both)
