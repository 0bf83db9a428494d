"""Engines: one signature (`harness.engines.types.Engine`), one file per implementation, and this
plain dict naming them. `generation.engine` in a config picks one; an unknown name is a config error.

To add an engine: a file with a class taking `(spec, *, batch_size, options)` (`spec` a `LoadSpec`:
the model and `model.*`'s loading settings; an engine that does not load weights itself takes and
ignores them), an `identity(dtype, options)`
function and, when it has settings of its own, a pydantic model of them (read from
`generation.<name>` in a config), plus one line in `ENGINES`. Heavy libraries (vllm, ray, httpx) are
imported where they are used, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.engines.hf import HFEngine, hf_identity, load_causal_lm
from harness.engines.openai import OpenAIEngine, OpenAIOptions, openai_identity
from harness.engines.types import Completion, Decoding, Engine, LoadSpec, Request
from harness.engines.vllm import VLLMEngine, VLLMOptions, preflight, vllm_identity


@dataclass(frozen=True)
class EngineKind:
    make: Callable[..., Engine]  # (spec: LoadSpec, *, batch_size, options) -> a loaded engine
    identity: Callable[..., dict]  # (dtype, options) -> the identity its engines will have, before loading
    options: type | None = None  # its settings under `generation.<name>` (a pydantic model), if any
    # (adapters [(label, folder)], options, base path) -> (options settled, problems): before loading
    preflight: Callable | None = None


ENGINES: dict[str, EngineKind] = {
    "hf": EngineKind(HFEngine, hf_identity),
    "vllm": EngineKind(VLLMEngine, vllm_identity, VLLMOptions, preflight),
    "openai": EngineKind(OpenAIEngine, openai_identity, OpenAIOptions),
}

__all__ = [
    "ENGINES",
    "Completion",
    "Decoding",
    "Engine",
    "EngineKind",
    "HFEngine",
    "LoadSpec",
    "Request",
    "load_causal_lm",
]
