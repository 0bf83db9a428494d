"""The Hugging Face in-process engine, the reference: a causal LM (hub id or folder) through
`from_pretrained`, greedy batched decoding, PEFT adapters switched on one loaded base.

Requests are tokenised once and decoded in batches of similar length with left padding and the KV
cache; completions come back in request order. LoRA adapters are added by name (PEFT multi-adapter);
a request names one, or none for the bare base with every adapter disabled. On CUDA, `batch_size`
is where it starts: a batch that runs out of memory is retried at half the size, which then stays.
A newline stop ends a row at its first newline token, as lm-eval's `until` does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from core.device import device_class, torch_device
from harness.engines.types import Completion, Request

DTYPES = ("auto", "float32", "bfloat16", "float16")


def load_causal_lm(
    name_or_path: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
):
    """Tokenizer and model through `from_pretrained`, exactly as for a hub model; a tokenizer without
    a pad token pads with its end-of-sequence token. `trust_remote_code` stays off unless the user's
    config turns it on. `dtype` "auto" keeps what the checkpoint says."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    load = {"revision": revision, "trust_remote_code": trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if dtype != "auto":
        import torch

        load["dtype"] = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, **load)
    return tokenizer, model


def hf_identity(dtype: str = "auto") -> dict:
    """The identity an `HFEngine` with these settings would have, known before loading anything."""
    return {"engine": "hf", "dtype": dtype, "device": device_class()}


class HFEngine:
    """Greedy batched generation with a transformers causal LM (the `Engine` signature)."""

    def __init__(
        self,
        name_or_path: str,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        batch_size: int = 32,
        dtype: str = "auto",
    ):
        import torch

        self.tokenizer, self.model = load_causal_lm(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code, dtype=dtype
        )
        self.tokenizer.padding_side = "left"
        self.device = torch_device()
        self.model.to(self.device).eval()
        self.identity = hf_identity(dtype)
        self.batch_size = batch_size
        self.halve_on_oom = self.device == "cuda"  # batch_size is where CUDA starts; CPU keeps it
        self._torch = torch
        self.adapters: dict[str, Path] = {}
        self._newline = None  # the newline stopping criterion, built on first use

    def add_adapter(self, name: str, path: str | Path) -> None:
        """Load a PEFT adapter beside the others on the same base weights (no reload of the base)."""
        from peft import PeftModel

        if name in self.adapters:
            return
        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        else:
            self.model.load_adapter(str(path), adapter_name=name)
        self.model.to(self.device).eval()
        self.adapters[name] = Path(path)

    def _using(self, adapter: str | None):
        if adapter is None:
            return self.model.disable_adapter() if self.adapters else contextlib.nullcontext()
        if adapter not in self.adapters:
            raise KeyError(f"adapter {adapter!r} is not loaded (loaded: {sorted(self.adapters)})")
        self.model.set_adapter(adapter)
        return contextlib.nullcontext()

    def prompt_text(self, request: Request) -> str:
        """The text the model reads: the prompt, or the chat messages through the tokenizer's template."""
        if request.messages is None:
            return request.prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("chat messages need a tokenizer with a chat template; this one has none")
        return self.tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False
        )

    def generate(self, requests: Sequence[Request], *, progress=None) -> list[Completion]:
        """One greedy completion per request, in request order (grouped by adapter and decoding)."""
        out: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.adapter, r.decoding), []).append(i)
        for (adapter, decoding), idx in groups.items():
            with self._using(adapter):
                done = self._generate([self.prompt_text(requests[i]) for i in idx], decoding, progress)
            for i, c in zip(idx, done):
                out[i] = c
        return out  # type: ignore[return-value]

    def _generate(self, prompts: list[str], decoding, progress) -> list[Completion]:
        torch, tok = self._torch, self.tokenizer
        encoded = tok(prompts)["input_ids"]  # tokenised once; batches are padded from these
        lengths = [len(ids) for ids in encoded]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths share a batch
        stops = [s for s in decoding.stop if s]
        criteria, others = [], [s for s in stops if s != "\n"]
        if "\n" in stops:
            if self._newline is None:
                self._newline = _newline_stop(tok, self.device)
            criteria.append(self._newline)
        extra = {"stop_strings": others, "tokenizer": tok} if others else {}
        out: list[Completion | None] = [None] * len(prompts)
        start = 0
        while start < len(order):
            idx = order[start : start + self.batch_size]
            batch = tok.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(self.device)
            t0 = time.perf_counter()
            try:
                with torch.inference_mode():
                    generated = self.model.generate(
                        **batch,
                        max_new_tokens=decoding.max_new_tokens,
                        do_sample=False,
                        num_beams=1,
                        pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.eos_token_id,
                        stopping_criteria=criteria or None,
                        **extra,
                    )
            except torch.cuda.OutOfMemoryError:
                if not self.halve_on_oom or self.batch_size == 1:
                    raise
                generated = None
            if generated is None:  # out of memory: free what the batch held (outside the except)
                del batch
                torch.cuda.empty_cache()
                self.batch_size //= 2  # and it stays halved: longer prompts come later
                continue
            start += len(idx)
            elapsed = (time.perf_counter() - t0) / len(idx)
            new = generated[:, batch["input_ids"].shape[1] :]
            for row, i in enumerate(idx):
                ids = [t for t in new[row].tolist() if t != tok.pad_token_id]
                if tok.eos_token_id in ids:
                    ids = ids[: ids.index(tok.eos_token_id)]
                text = tok.decode(ids, skip_special_tokens=True)
                for s in stops:
                    text = text.split(s)[0]
                out[i] = Completion(text.strip(), lengths[i], len(ids), elapsed)
            if progress is not None:
                progress(len(idx))
        return out  # type: ignore[return-value]


def _newline_stop(tokenizer, device: str):
    """A stopping criterion: a row is done once its last token contains a newline."""
    import torch
    from transformers import StoppingCriteria

    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    newline = torch.tensor([i for i, t in enumerate(texts) if "\n" in t], dtype=torch.long, device=device)

    class NewlineStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.isin(input_ids[:, -1], newline)

    return NewlineStop()
