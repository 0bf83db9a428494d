"""Bad configuration: one line naming file, line and field; exit code 2; nothing written."""

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from harness.cli import app
from harness.config import load_config
from tests.conftest import MICRO_CONFIG

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
    path = _write(tmp_path, MICRO_CONFIG.replace("retriever: bm25", "retriever: bm52"))
    result = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
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
    path = _write(tmp_path, MICRO_CONFIG.replace("model:\n", "model:\n  dtype: bfloat16\n"))
    result = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        f"error: {path}: model.dtype: this GPU does not support bfloat16: use float16, float32 or auto"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.yaml"]


def test_yaml_is_read_with_the_safe_loader(tmp_path):
    """An unsafe loader would run the command (and create the marker file) before any validation."""
    marker = tmp_path / "pwned"
    path = _write(tmp_path, f"name: x\nseed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert not marker.exists()
    assert err.value.line == 2 and "python/object/apply" in err.value.message
