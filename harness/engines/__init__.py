"""Engines: one signature (`harness.engines.types.Engine`), one file per implementation, and this
plain dict naming them. `generation.engine` in a config picks one; an unknown name is a config error.

To add an engine: a file with a class taking `(model path, *, revision, trust_remote_code,
batch_size, dtype)` and an `identity(dtype)` function, plus one line in `ENGINES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.engines.hf import HFEngine, hf_identity, load_causal_lm
from harness.engines.types import Completion, Decoding, Engine, Request


@dataclass(frozen=True)
class EngineKind:
    make: Callable[..., Engine]  # (model path, *, revision, trust_remote_code, batch_size, dtype)
    identity: Callable[[str], dict]  # dtype -> the identity its engines will have, before loading


ENGINES: dict[str, EngineKind] = {
    "hf": EngineKind(HFEngine, hf_identity),
}

__all__ = [
    "ENGINES",
    "Completion",
    "Decoding",
    "Engine",
    "EngineKind",
    "HFEngine",
    "Request",
    "load_causal_lm",
]
