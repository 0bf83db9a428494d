"""The Hugging Face in-process backend: load a causal LM (hub id or folder) and generate greedily.

`HFBackend.generate(prompts)` decodes in batches of similar length with left padding and the KV
cache, and returns one `Completion` per prompt, in the prompts' order. The base model is loaded
once; LoRA adapters are added to it by name (PEFT multi-adapter) and `generate(..., adapter=name)`
switches between them, or runs the bare base with every adapter disabled.
On CUDA, `batch_size` is where it starts: a batch that runs out of memory is retried at half the
size, which then stays. With `one_line` a row stops at its first newline, as with lm-eval's `until`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.device import torch_device


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    latency_s: float  # the batch's wall time shared equally among its prompts


def load_causal_lm(name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False):
    """Tokenizer and model through `from_pretrained`, exactly as for a hub model.

    `trust_remote_code` stays off unless the user's config turns it on.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        name_or_path, revision=revision, trust_remote_code=trust_remote_code
    )
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, revision=revision, trust_remote_code=trust_remote_code
    )
    return tokenizer, model


class HFBackend:
    """Greedy batched generation with a transformers causal LM."""

    def __init__(
        self,
        name_or_path: str,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        batch_size: int = 32,
        max_new_tokens: int = 24,
        one_line: bool = True,
    ):
        """`one_line`: cut each completion at its first newline (a variant's answer is one line)."""
        import torch

        self.tokenizer, self.model = load_causal_lm(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = torch_device()
        self.model.to(self.device).eval()
        self.batch_size, self.max_new_tokens, self.one_line = batch_size, max_new_tokens, one_line
        self.halve_on_oom = self.device == "cuda"  # batch_size is where CUDA starts; CPU keeps it
        self._torch = torch
        self.adapters: dict[str, Path] = {}
        # A row stops at its newline, as lm-eval's does: a base model goes on with a new "Question:".
        self._stop = _newline_stop(self.tokenizer, self.device) if one_line else None

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

    def generate(
        self, prompts: Sequence[str], *, adapter: str | None = None, progress=None
    ) -> list[Completion]:
        """Greedy completions, cut at the first newline (the answer is one line).

        `adapter` names a loaded adapter; None runs the base model alone.
        """
        with self._using(adapter):
            return self._generate(prompts, progress)

    def _generate(self, prompts: Sequence[str], progress) -> list[Completion]:
        torch, tok = self._torch, self.tokenizer
        encoded = tok(list(prompts))["input_ids"]  # tokenised once; batches are padded from these
        lengths = [len(ids) for ids in encoded]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths share a batch
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
                        max_new_tokens=self.max_new_tokens,
                        do_sample=False,
                        num_beams=1,
                        pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.eos_token_id,
                        stopping_criteria=[self._stop] if self._stop else None,
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
                text = (text.split("\n")[0] if self.one_line else text).strip()
                out[i] = Completion(text, lengths[i], len(ids), elapsed)
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
