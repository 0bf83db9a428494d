"""The engine signature: requests in, completions out in request order, and an identity.

Every engine (HF in-process, and later vLLM, OpenAI-compatible servers, a Ray wrapper) takes the
same `Request`s and returns the same `Completion`s. Its `identity` (engine name, dtype, device
class) goes into every generation key, so answers cached from one engine are never reused for
another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run here (not installed, no such interpreter): the message says
    how to install it."""


@dataclass(frozen=True)
class LoadSpec:
    """Which model to load and how: where it is (a folder or a hub id, at a hub revision, with or
    without its own code) and the `model.*` loading settings (dtype, device map, attention kernel),
    one object from the config to `from_pretrained`, for every engine, the judge's and training.
    Engines that load no weights (a server's) take it and ignore it; `dtype` is in their identity."""

    path: str
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    device_map: str | None = None
    attn_implementation: str = "auto"

    @classmethod
    def of(cls, spec: LoadSpec | str | Path) -> LoadSpec:
        """A spec as given, or a folder or hub id loaded with the defaults."""
        return spec if isinstance(spec, LoadSpec) else cls(str(spec))

    def on(self, path: str | Path) -> LoadSpec:
        """The same settings for another folder of ours (a full fine-tune): no hub revision."""
        return replace(self, path=str(path), revision=None)


@dataclass(frozen=True)
class Decoding:
    """How to decode. Greedy only for now: a bench compares variants, not samples."""

    max_new_tokens: int = 16
    stop: tuple[str, ...] = ("\n",)  # cut the completion at the first of these (an answer is one line)
    # (token id, bias) added to the logits at every step before the argmax (OpenAI's `logit_bias`,
    # vLLM's): a judge's calibrated verdict prior (`harness.builtin.judge_calibration`)
    logit_bias: tuple[tuple[int, float], ...] = ()

    def finish(self, text: str) -> str:
        """A completion as every engine returns it: leading whitespace skipped (an instruct model may
        open its turn with a newline), cut at the first of the stop strings (also where an engine or
        a server stopped on its own), stripped."""
        text = text.lstrip()
        for stop in self.stop:
            if stop:
                text = text.split(stop)[0]
        return text.strip()

    def server_stops(self) -> list[str]:
        """The stops an engine may leave to a server or to vLLM: those with a non-blank character.
        A whitespace stop (the newline) is applied by `finish` only, after the answer's leading
        whitespace: vLLM would cut an answer that opens with a newline to nothing."""
        return [s for s in self.stop if s.strip()]

    def key(self) -> dict:
        """What generation keys hash. `greedy` stays in for keys written before stops were settable;
        `lead` since a stop no longer cuts in the answer's leading whitespace (answers cached before
        were cut by the older rule)."""
        out: dict = {"greedy": True, "max_new_tokens": self.max_new_tokens, "lead": "skipped"}
        if self.stop != ("\n",):
            out["stop"] = list(self.stop)
        if self.logit_bias:
            out["logit_bias"] = [[t, b] for t, b in self.logit_bias]
        return out


@dataclass(frozen=True)
class Request:
    """One generation: a prompt (raw text) or chat messages, on the base model or a named adapter."""

    prompt: str | None = None
    messages: tuple[dict[str, str], ...] | None = None  # [{"role": ..., "content": ...}, ...]
    adapter: str | None = None  # a name given to `Engine.add_adapter`; None runs the bare base
    decoding: Decoding = Decoding()

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a request has exactly one of 'prompt' or 'messages'")


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    latency_s: float  # the batch's wall time shared equally among its requests


class Engine(Protocol):
    """What the harness needs of an engine.

    Two class attributes tell the generation stage how to feed it: `mixes_adapters` (True: one
    `generate` call may mix any adapters at no cost, as vLLM's multi-LoRA batches do; False: the
    stage sends one adapter at a time, as PEFT switches adapters on one model) and `chunk_size`
    (requests per call, and per committed transaction of the results store)."""

    identity: dict  # {"engine": name, "dtype": ..., "device": ...}: part of every generation key
    mixes_adapters: bool
    chunk_size: int

    def add_adapter(self, name: str, path: str | Path, *, label: str | None = None) -> None:
        """Make a PEFT adapter folder available to requests under `name` (the base stays loaded once).
        `label` is the adapter's human name (its method, `-s<seed>` when several seeds), which an
        engine on a server maps to the model name the server serves it under."""

    def generate(
        self, requests: Sequence[Request], *, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        """One completion per request, in request order; `progress(n)` after every n done."""
