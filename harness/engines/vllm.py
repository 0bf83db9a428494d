"""The `vllm` engine: vLLM's offline `LLM` with every adapter a `LoRARequest`, and every request of a
chunk, whatever its adapter, in one `generate` call.

vLLM pins its own transformers, so it usually lives in a virtualenv of its own (`make vllm` makes
`.venv-vllm`). The engine therefore runs `vllm_worker.py` under that interpreter and talks to it over
a pipe; the worker is the only code that imports vLLM. The interpreter is, in order:
`generation.vllm.python`, this one when it imports vllm, `$RAGVFT_VLLM_PYTHON`, `.venv-vllm` beside
the project.

Before anything loads, `preflight` reads each adapter's `adapter_config.json`: a rank above
`max_lora_rank`, `modules_to_save`, DoRA, or another base model are one-line errors (vLLM would
refuse them or serve something else). `max_lora_rank: auto` is the largest rank among the adapters
known at load (at least 16), rounded up to a size vLLM supports (64 when nothing was checked first).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.device import device_class, resolve_dtype
from harness.engines.peft_files import adapter_config, base_problem
from harness.engines.types import Completion, EngineUnavailable, LoadSpec, Request

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("vllm_worker.py")
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts
INSTALL = "run `make vllm` (vLLM in a virtualenv of its own, .venv-vllm) or set generation.vllm.python"


class VLLMOptions(BaseModel):
    """`generation.vllm`: how vLLM is started. Unset fields take vLLM's own defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_lora_rank: int | Literal["auto"] = Field(
        "auto", description="Largest LoRA rank served; auto: the largest of the run's adapters (at least 16)."
    )
    max_loras: int = Field(8, ge=1, description="Adapters resident on the device at once.")
    max_model_len: int | None = Field(None, ge=16, description="Context length; none: the model's.")
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of GPU memory vLLM takes; on a CPU, the share of RAM for its KV cache. "
        "None: 0.9 on a GPU, 0.2 on a CPU (vLLM's default 0.92 fails on a CPU that runs anything else).",
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over.")
    enforce_eager: bool = Field(False, description="No CUDA graphs (faster start, slower decoding).")
    chunk_size: int = Field(
        2048, ge=1, description="Requests per generate call, and per committed transaction of the store."
    )
    python: str | None = Field(
        None, description="An interpreter that imports vllm (default: see the engine)."
    )

    @field_validator("max_lora_rank", mode="before")
    @classmethod
    def _rank(cls, v: object) -> object:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            return v
        raise ValueError(f"{v!r} is neither a positive whole number (8, 16, 32, ...) nor auto")


def vllm_identity(dtype: str = "auto", options: VLLMOptions | None = None) -> dict:
    return {"engine": "vllm", "dtype": dtype, "device": device_class()}


def vllm_python(options: VLLMOptions) -> str:
    """The interpreter that runs vLLM, or EngineUnavailable saying how to get one."""
    if options.python:
        if not Path(options.python).exists():
            raise EngineUnavailable(f"generation.vllm.python {options.python} does not exist; {INSTALL}")
        return options.python
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    for candidate in (os.environ.get("RAGVFT_VLLM_PYTHON"), str(ROOT / ".venv-vllm" / "bin" / "python")):
        if candidate and Path(candidate).exists():
            return candidate
    raise EngineUnavailable(f"vLLM is not installed: {INSTALL}")


def preflight(
    adapters: Sequence[tuple[str, Path]], options: VLLMOptions, base_path: str
) -> tuple[VLLMOptions, list[str]]:
    """(options with max_lora_rank settled, one line per adapter vLLM cannot serve as asked)."""
    problems: list[str] = []
    ranks: list[int] = []
    for label, path in adapters:
        cfg = adapter_config(path)
        if cfg.get("peft_type", "LORA") != "LORA":
            problems.append(
                f"adapter {label!r} is {cfg.get('peft_type')}, not LoRA: vLLM serves LoRA only; use "
                "generation.engine: hf"
            )
            continue
        rank = max([int(cfg.get("r", 8))] + [int(r) for r in (cfg.get("rank_pattern") or {}).values()])
        ranks.append(rank)
        if options.max_lora_rank != "auto" and rank > options.max_lora_rank:
            problems.append(
                f"adapter {label!r} has rank {rank}, above generation.vllm.max_lora_rank "
                f"{options.max_lora_rank}: raise it to {_round_rank(rank)} or set it to auto"
            )
        if cfg.get("modules_to_save"):
            problems.append(
                f"adapter {label!r} trains whole modules ({', '.join(cfg['modules_to_save'])}: modules_to_save), "
                "which vLLM does not serve: use generation.engine: hf, or train without modules_to_save"
            )
        if cfg.get("use_dora"):
            problems.append(
                f"adapter {label!r} is DoRA, which vLLM does not serve: use generation.engine: hf"
            )
        wrong_base = base_problem(cfg, base_path)
        if wrong_base:
            problems.append(f"adapter {label!r}: {wrong_base}")
    if options.max_lora_rank == "auto":
        options = options.model_copy(update={"max_lora_rank": _round_rank(max(ranks + [16]))})
    return options, problems


def _round_rank(rank: int) -> int:
    return next((r for r in LORA_RANKS if r >= rank), rank)


class VLLMEngine:
    """Greedy generation with vLLM in a worker process (the `Engine` signature)."""

    mixes_adapters = True

    def __init__(
        self, spec: LoadSpec | str, *, batch_size: int = 32, options: VLLMOptions | None = None
    ) -> None:
        """`spec`: the model and how to load it; its device map and attention kernel are the hf
        engine's (vLLM places the model by `tensor_parallel_size` and picks its attention backend)."""
        spec = LoadSpec.of(spec)
        name_or_path = spec.path
        options = options or VLLMOptions()
        if options.max_lora_rank == "auto":  # not settled by `preflight`: room for the usual ranks
            options = options.model_copy(update={"max_lora_rank": 64})
        self.options = options
        self.identity = vllm_identity(spec.dtype, options)
        self.chunk_size = options.chunk_size
        self.base_path = name_or_path
        self.adapters: dict[str, tuple[int, str]] = {}  # name -> (LoRA id, folder); ids fixed by order
        gpu = self.identity["device"] == "cuda"
        llm = {
            "enable_lora": True,
            "max_lora_rank": options.max_lora_rank,
            "max_loras": options.max_loras,
            "dtype": resolve_dtype(spec.dtype),  # not vLLM's auto, which runs float32 as float16: the hf engine's
            "gpu_memory_utilization": options.gpu_memory_utilization or (0.9 if gpu else 0.2),
            "tensor_parallel_size": options.tensor_parallel_size,
            "enforce_eager": options.enforce_eager,
            "trust_remote_code": spec.trust_remote_code,
            "seed": 0,
        }
        if options.max_model_len:
            llm["max_model_len"] = options.max_model_len
        if spec.revision:
            llm["revision"] = spec.revision
        self._start(vllm_python(options))
        reply = self._call(
            {"op": "init", "model": name_or_path, "llm": llm}, f"loading {name_or_path} in vLLM"
        )
        self.version, self.max_model_len = reply["version"], reply["max_model_len"]
        self.end_ids = reply["end_token_ids"]  # the generation config's end tokens, stopped on
        self._llm = llm
        self.calls = 0  # generate calls made (the generation stage sends a whole chunk in one)

    @property
    def info(self) -> dict:
        """What the manifest says of this engine."""
        return {
            "vllm": self.version,
            "max_model_len": self.max_model_len,
            "end_token_ids": self.end_ids,
            "llm": self._llm,
            "calls": self.calls,
        }

    def _start(self, python: str) -> None:
        read, write = os.pipe()
        self.log = Path(tempfile.mkstemp(prefix="ragvft-vllm-", suffix=".log")[1])
        env = os.environ | {
            "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # the engine core in the worker itself: nothing to spawn
            "VLLM_CONFIGURE_LOGGING": os.environ.get("VLLM_CONFIGURE_LOGGING", "1"),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("PYTHONPATH", None)  # the project's packages are not the worker's
        with open(self.log, "w") as log:
            self._proc = subprocess.Popen(
                [python, "-P", str(WORKER), "--reply-fd", str(write)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(write,),
                env=env,
                text=True,
            )
        os.close(write)
        self._replies = os.fdopen(read, "r")

    def _call(self, msg: dict, doing: str) -> dict:
        stdin = self._proc.stdin
        assert stdin is not None  # started with stdin=PIPE
        try:
            stdin.write(json.dumps(msg) + "\n")
            stdin.flush()
            line = self._replies.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise RuntimeError(f"the vLLM worker died while {doing}: {self._log_tail()} (log: {self.log})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"vLLM failed while {doing}: {reply['error']} (log: {self.log})")
        return reply

    def _log_tail(self) -> str:
        lines = [x for x in self.log.read_text(errors="replace").splitlines() if x.strip()]
        return lines[-1].strip()[:300] if lines else "no output"

    def add_adapter(self, name: str, path: str | Path, *, label: str | None = None) -> None:
        if name in self.adapters:
            return
        _, problems = preflight([(label or name, Path(path))], self.options, self.base_path)
        if problems:
            raise ValueError(problems[0])
        self.adapters[name] = (len(self.adapters) + 1, str(path))  # LoRA ids start at 1

    def generate(
        self, requests: Sequence[Request], *, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        if not requests:
            return []
        wire = []
        for r in requests:
            if r.adapter is not None and r.adapter not in self.adapters:
                raise KeyError(f"adapter {r.adapter!r} is not loaded (loaded: {sorted(self.adapters)})")
            wire.append(
                {
                    "prompt": r.prompt,
                    "messages": list(r.messages) if r.messages is not None else None,
                    "adapter": r.adapter,
                    "max_tokens": r.decoding.max_new_tokens,
                    "stop": r.decoding.server_stops(),
                    "logit_bias": {t: b for t, b in r.decoding.logit_bias} or None,
                }
            )
        t0 = time.perf_counter()
        self.calls += 1
        reply = self._call({"op": "generate", "requests": wire, "adapters": self.adapters}, "generating")
        each = (time.perf_counter() - t0) / len(requests)
        out = []
        for r, c in zip(requests, reply["completions"], strict=True):
            out.append(Completion(r.decoding.finish(c["text"]), c["tokens_in"], c["tokens_out"], each))
        if progress is not None:
            progress(len(requests))
        return out

    def close(self) -> None:
        if getattr(self, "_proc", None) is not None and self._proc.poll() is None:
            try:
                self._call({"op": "close"}, "closing")
            except RuntimeError:
                pass
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
