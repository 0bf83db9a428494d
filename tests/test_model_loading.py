"""A user's own model: how it loads (`model.dtype`, `model.device_map`, `model.attn_implementation`,
resolved in `core.device` for every loader) and what it is keyed by (`core.cache.model_identity`: a
folder by a fingerprint that never reads the weights, a hub id by its commit). Tiny models built here;
the hub is offline, its cache a folder laid out as huggingface_hub lays it out."""

import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from core import cache
from core.cache import folder_hash, model_identity
from core.device import check_dtype, resolve_attention, resolve_dtype, torch_device
from core.errors import InputError
from harness.engines import Decoding, HFEngine, LoadSpec, Request, load_causal_lm

MAIN = "0123456789abcdef0123456789abcdef01234567"  # the commit refs/main points at
V1 = "fedcba9876543210fedcba9876543210fedcba98"  # the commit tag v1 points at


def _fake_gpu(monkeypatch, *, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.fixture
def loads(monkeypatch) -> list[dict]:
    """The keyword arguments of every `AutoModelForCausalLM.from_pretrained` call."""
    from transformers import AutoModelForCausalLM

    calls: list[dict] = []
    original = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    return calls


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 2-layer Llama and its tokenizer, saved in float32."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.builtin.basemodel import train_tokenizer

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = train_tokenizer(["the cat sat on the mat", "a dog ran in the park", "Question: Answer:"], 300)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


# --- dtype, attention, device placement --------------------------------------------------------------


def test_auto_dtype_is_bfloat16_on_a_gpu_that_has_it_else_float32(monkeypatch):
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert resolve_dtype("auto") == ("bfloat16" if gpu_bf16 else "float32")
    assert resolve_dtype("float16") == "float16"
    _fake_gpu(monkeypatch, bf16=True)
    assert resolve_dtype("auto") == "bfloat16"
    _fake_gpu(monkeypatch, bf16=False)
    assert resolve_dtype("auto") == "float32"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_check_dtype_agrees_with_a_matrix_product_on_this_device(dtype):
    """Not assumed: whether this device multiplies in `dtype` is tried here, and check_dtype must agree."""
    x = torch.ones(2, 2, dtype=getattr(torch, dtype), device=torch_device())
    try:
        torch.matmul(x, x)
        runs = True
    except RuntimeError:
        runs = False
    if runs:
        assert check_dtype(dtype, "bench.yaml") == dtype
    else:
        with pytest.raises(InputError, match="model.dtype"):
            check_dtype(dtype, "bench.yaml")


def test_a_dtype_the_device_cannot_run_is_one_line_naming_model_dtype(monkeypatch):
    def no_half(a, b):
        raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'\nmore detail")

    monkeypatch.setattr(torch, "matmul", no_half)
    with pytest.raises(InputError) as err:
        check_dtype("float16", "bench.yaml")
    message = str(err.value)
    assert message.startswith("bench.yaml: model.dtype: a matrix product in float16 fails")
    assert "not implemented for 'Half'" in message and "use float32 or auto" in message
    assert "\n" not in message

    _fake_gpu(monkeypatch, bf16=False)
    with pytest.raises(InputError, match="model.dtype: this GPU does not support bfloat16"):
        check_dtype("bfloat16", "bench.yaml")


def test_auto_attention_is_flash_attention_only_on_cuda_in_half_precision_with_flash_attn(monkeypatch):
    assert resolve_attention("eager", "auto") == "eager"  # an explicit name is passed through
    if torch_device() == "cpu":
        assert resolve_attention("auto", "auto") is None  # transformers' default: sdpa
    _fake_gpu(monkeypatch, bf16=True)
    monkeypatch.setitem(sys.modules, "flash_attn", types.ModuleType("flash_attn"))
    assert resolve_attention("auto", "auto") == "flash_attention_2"
    assert resolve_attention("auto", "float16") == "flash_attention_2"
    assert resolve_attention("auto", "float32") is None  # flash attention runs in half precision only
    monkeypatch.setitem(sys.modules, "flash_attn", None)  # installed for another torch: the import fails
    assert resolve_attention("auto", "auto") is None


def test_load_causal_lm_loads_straight_onto_the_device_in_the_resolved_dtype(tiny, loads):
    _, model = load_causal_lm(str(tiny))  # the defaults: what training gets without passing anything
    assert loads[-1]["device_map"] == torch_device()  # placed by from_pretrained, not moved after
    assert {p.dtype for p in model.parameters()} == {getattr(torch, resolve_dtype("auto"))}
    assert {p.device.type for p in model.parameters()} == {torch_device()}
    if torch_device() == "cpu":
        assert model.config._attn_implementation == "sdpa"

    _, model = load_causal_lm(LoadSpec(str(tiny), dtype="bfloat16", attn_implementation="eager"))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "eager"


def _adapter(tiny: Path, folder: Path) -> Path:
    """A LoRA adapter with random (not zero) weights, so that it changes the logits."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    lora = LoraConfig(
        r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny), lora).save_pretrained(folder)
    return folder


def test_device_map_auto_never_moves_the_model_and_answers_as_one_device(tiny, tmp_path, loads, monkeypatch):
    adapter = _adapter(tiny, tmp_path / "adapter")
    requests = [
        Request(p, adapter=a, decoding=Decoding(max_new_tokens=5))
        for p in ("the cat", "a dog ran", "Question: the mat", "in the park the")
        for a in (None, "x")
    ]
    one = HFEngine(str(tiny), batch_size=4)
    one.add_adapter("x", adapter)
    expected = [c.text for c in one.generate(requests)]

    moved = []
    to = torch.nn.Module.to

    def spy(self, *args, **kwargs):
        moved.append(self)
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    spread = HFEngine(LoadSpec(str(tiny), device_map="auto"), batch_size=4)
    assert loads[-1]["device_map"] == "auto"  # accelerate places it (here on the one device there is)
    base = spread.model
    spread.add_adapter("x", adapter)
    assert not any(m is base or m is spread.model for m in moved)  # never `.to()` on a placed model
    assert [c.text for c in spread.generate(requests)] == expected


# --- what a model is keyed by ------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The names of the files whose bytes model identities read."""
    names: list[str] = []
    original = cache._read_into

    def spy(h, path):
        names.append(path.name)
        original(h, path)

    monkeypatch.setattr(cache, "_read_into", spy)
    return names


def test_a_model_folder_is_keyed_by_a_fingerprint_that_never_reads_the_weights(tmp_path, reads):
    folder = tmp_path / "model"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": 4096}')
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {}}}')
    index = folder / "model.safetensors.index.json"
    index.write_text('{"weight_map": {"a": "model-00001-of-00002.safetensors"}}')
    big = folder / "model-00001-of-00002.safetensors"
    with big.open("wb") as f:
        f.truncate(3 << 30)  # 3 GiB, sparse: hashing it would read 3 GiB
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"\x01" * 1024)

    first = model_identity(str(folder))
    assert first.startswith("local:")
    assert sorted(reads) == ["config.json", "model.safetensors.index.json", "tokenizer.json"]
    assert model_identity(str(folder)) == first  # stable

    # The weights' bytes are not read: the same size and time, other bytes, the same identity.
    stat = big.stat()
    with big.open("r+b") as f:
        f.seek(1 << 30)
        f.write(b"changed")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_identity(str(folder)) == first
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # rewritten: another time
    assert model_identity(str(folder)) != first
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with big.open("r+b") as f:
        f.truncate((3 << 30) + 1)  # another size
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_identity(str(folder)) != first
    with big.open("r+b") as f:
        f.truncate(3 << 30)
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_identity(str(folder)) == first

    # Small files by their bytes: a changed config or weights index is another model, a touched one not.
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config.replace("4096", "2048"))
    assert model_identity(str(folder)) != first
    (folder / "config.json").write_text(config)
    assert model_identity(str(folder)) == first
    index.write_text('{"weight_map": {"b": "model-00001-of-00002.safetensors"}}')
    assert model_identity(str(folder)) != first
    assert "HEAD" not in reads  # `.git` is no part of the model


def test_a_peft_adapter_folder_is_keyed_by_every_byte(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(b"\x00" * 4096)
    first = model_identity(str(folder))
    assert first == f"local:{folder_hash(folder)}"  # as before: adapter keys stay what they were
    stat = weights.stat()
    weights.write_bytes(b"\x01" * 4096)  # retrained in place: the same size
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same time
    assert model_identity(str(folder)) != first


@pytest.fixture
def hub_cache(tmp_path, tiny, monkeypatch) -> Path:
    """A hub cache as huggingface_hub writes it, holding org/tiny at two commits: blobs, snapshots of
    symlinks to them, and refs naming the commit of `main` and of tag `v1`."""
    from huggingface_hub import constants

    assert constants.is_offline_mode()  # nothing here may reach the network
    root = tmp_path / "hub"
    repo = root / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    for commit in (MAIN, V1):
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        for f in tiny.iterdir():
            blob = repo / "blobs" / f"{commit[:8]}-{f.name}"
            blob.write_bytes(f.read_bytes())
            (snapshot / f.name).symlink_to(Path("../../blobs") / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v1").write_text(V1)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))  # where hub and transformers look
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    return root


def test_a_hub_id_is_keyed_by_the_commit_its_revision_is_at(hub_cache):
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained("org/tiny").hidden_size == 32  # the layout is a real hub cache
    assert model_identity("org/tiny") == f"hub:org/tiny@{MAIN}"
    assert model_identity("org/tiny", "main") == f"hub:org/tiny@{MAIN}"
    assert model_identity("org/tiny", "v1") == f"hub:org/tiny@{V1}"
    assert model_identity("org/tiny", V1) == f"hub:org/tiny@{V1}"
    assert model_identity("org/tiny", "9" * 40) == f"hub:org/tiny@{'9' * 40}"  # a commit is resolved
    (hub_cache / "models--org--tiny" / "refs" / "main").write_text(V1)  # main moved on: another model
    assert model_identity("org/tiny") == f"hub:org/tiny@{V1}"
    assert model_identity("org/tiny", "nope") == "hub:org/tiny@nope (unresolved)"
    assert model_identity("org/absent") == "hub:org/absent@main (unresolved)"


def test_online_the_hub_says_the_commit_and_the_cache_answers_when_it_cannot(hub_cache, monkeypatch):
    from huggingface_hub import HfApi, constants

    asked = []

    def model_info(self, repo_id, revision=None):
        asked.append((repo_id, revision))
        return SimpleNamespace(sha="f" * 40)

    monkeypatch.setattr(constants, "is_offline_mode", lambda: False)
    monkeypatch.setattr(HfApi, "model_info", model_info)
    assert model_identity("org/tiny", "v1") == f"hub:org/tiny@{'f' * 40}"
    assert asked == [("org/tiny", "v1")]

    def unreachable(self, repo_id, revision=None):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    assert model_identity("org/tiny", "v1") == f"hub:org/tiny@{V1}"


def test_the_manifest_records_the_commit_the_identity_time_and_how_the_model_loads(
    hub_cache, tmp_path, loads
):
    from harness.artifacts import resolve_model
    from harness.config import load_config
    from harness.run.engine import LazyEngine
    from tests.conftest import MICRO, write_config

    model = {"path": "org/tiny", "dtype": "bfloat16", "device_map": "auto", "attn_implementation": "eager"}
    config = load_config(write_config(tmp_path, MICRO | {"model": model}))
    base = resolve_model(config, {})
    assert base.identity == f"hub:org/tiny@{MAIN}"
    assert base.info["resolved_revision"] == MAIN
    assert isinstance(base.info["identity_s"], float) and base.info["identity_s"] >= 0
    assert base.info["loading"] == {"dtype": "bfloat16", "device_map": "auto", "attn_implementation": "eager"}

    engine = LazyEngine.for_base(config, base)
    assert engine.identity["dtype"] == "bfloat16"  # as configured, in every generation key
    model = engine.get().model
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "eager"
    assert loads[-1]["device_map"] == "auto"
