"""The base model every variant shares: the built-in one (trained once, cached) or a hub id / folder,
with the identity that adapter and generation keys depend on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.cache import model_identity
from core.device import check_dtype, resolve_attention
from core.errors import InputError
from harness.builtin.basemodel import BUILD_RECORD, BaseModelSpec, build_base_model
from harness.builtin.shipped import shipped_base, shipped_identity
from harness.pretrained import gguf
from harness.prompts import RAW, PromptFormat

if TYPE_CHECKING:
    from harness.config.bench import BenchConfig


@dataclass
class BaseModel:
    path: str  # a folder or a hub id
    identity: str  # what generation and adapter keys depend on
    info: dict  # what the manifest says about it
    spec: BaseModelSpec | None = None  # the built-in model's settings
    revision: str | None = None
    trust_remote_code: bool = False
    prompt_format: PromptFormat = field(default=RAW)  # raw text, or chat through its template


def prompt_format(config: BenchConfig, base: BaseModel) -> PromptFormat:
    """The base model's prompt format (`model.chat_template`, `model.system_prompt`), read from its
    tokenizer (loaded alone: seconds, even for a large model)."""
    from transformers import AutoTokenizer

    m = config.model
    tokenizer = AutoTokenizer.from_pretrained(
        base.path, revision=base.revision, trust_remote_code=base.trust_remote_code
    )
    try:
        return PromptFormat.of(tokenizer, m.chat_template, m.system_prompt)
    except ValueError as e:
        raise InputError(config.source, f"{base.path}: {e}", field="model.chat_template") from None


def resolve_model(config: BenchConfig, timings: dict) -> BaseModel:
    m = config.model
    dtype = check_dtype(m.dtype, config.source)  # before anything trains or loads
    if m.builtin is not None:
        # no suite setting enters the recipe: every built-in domain avoids the pool's names
        # (suites.builtin.pool_names), so one shipped base serves every suite, seed and scale
        spec = BaseModelSpec(intermediate_size=3 * m.builtin.hidden_size, **m.builtin.model_dump())
        t0 = time.time()
        path = shipped_base(spec)  # built by maintainers with the same recipe: nothing to train
        if path is not None:
            key, status, identity = spec.recipe_key(), "shipped", shipped_identity(path)
        else:
            built: list[Path] = []  # the folder, when this run trains it (not another run it waited for)
            path, identity = build_base_model(spec, built=built), f"builtin:{spec.key()}"
            key, status = spec.key(), "built" if built else "cached"
        timings["base_model_s"] = round(time.time() - t0, 2)
        record = json.loads((path / BUILD_RECORD).read_text())
        info = {"kind": "builtin", "key": key, "status": status, "build": record}
        base = BaseModel(str(path), identity, info, spec, m.revision, m.trust_remote_code)
    elif (file := gguf.gguf_file(m.path, m.gguf_file)) is not None:
        # dequantised once to a folder every engine and trainer loads; keyed by the file's sha256
        folder, info = gguf.as_folder(file)
        info = {"kind": "gguf", "path": m.path, "identity": f"gguf:{info['key']}", **info}
        base = BaseModel(str(folder), info["identity"], info, None, None, m.trust_remote_code)
    else:
        assert m.path is not None  # the schema requires model.builtin or model.path
        t0 = time.perf_counter()
        identity = model_identity(m.path, m.revision)
        info = {
            "kind": "path",
            "path": m.path,
            "revision": m.revision,
            "status": "external",
            "identity": identity,
            # a hub id's commit, or "<revision> (unresolved)"; a folder has none
            "resolved_revision": identity.partition("@")[2] or None,
            "identity_s": round(time.perf_counter() - t0, 4),  # a fingerprint: well under a second
        }
        base = BaseModel(m.path, identity, info, None, m.revision, m.trust_remote_code)
    base.info["loading"] = {
        "dtype": dtype,
        "device_map": m.device_map,
        "attn_implementation": resolve_attention(m.attn_implementation, m.dtype) or "default",
    }
    base.prompt_format = prompt_format(config, base)
    base.info["prompt_format"] = base.prompt_format.key()
    return base


def shipped_judge_for(config: BenchConfig, base: BaseModel) -> Path | None:
    """The shipped built-in judge (`harness.builtin.judge_model`) when the run's base is the shipped
    base it was fine-tuned from and `judge.builtin` sets nothing; otherwise None (a LoRA judge is then
    trained on the suite, as for any other base model)."""
    from harness.builtin.judge_model import shipped_judge

    j = config.judge
    if j is None or j.builtin is None or j.builtin.model_fields_set or base.info.get("status") != "shipped":
        return None
    if base.spec is None:
        return None
    return shipped_judge(base.spec)
