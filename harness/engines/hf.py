"""The Hugging Face in-process engine, the reference: a causal LM (hub id or folder) through
`from_pretrained`, greedy batched decoding, PEFT adapters switched on one loaded base.

Decoding is our own greedy loop, whose answers and token counts are `model.generate`'s (kept as the
reference path, and taken for soft prompts and logits processors). How batches are formed, joined,
shrunk and halved, and why no prompt cache is shared: docs/engines.md#the-hf-engine."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.device import device_class, torch_device
from harness.engines.hf_batch import RunningBatch
from harness.engines.hf_model import forward_args, full_attention, load_causal_lm, plain_greedy
from harness.engines.hf_stops import stop_criterion, token_tables
from harness.engines.peft_files import adapter_config, soft_prompt
from harness.engines.types import Completion, Decoding, LoadSpec, Request

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["HFEngine", "hf_identity", "load_causal_lm"]


def hf_identity(dtype: str = "auto", options: object = None) -> dict:
    """The identity an `HFEngine` with these settings would have, known before loading anything."""
    return {"engine": "hf", "dtype": dtype, "device": device_class()}


class HFEngine:
    """Greedy batched generation with a transformers causal LM (the `Engine` signature)."""

    mixes_adapters = False  # PEFT runs one adapter at a time on the shared base
    # A batch whose rows stop shrinks to no fewer rows than this (finished rows ride along, their
    # tokens discarded): on CPU, matrix products of 1-3 rows take other kernels, whose last bits
    # differ (measured: such rows' logits ~3e-6 off the same rows' among 32; equal from 4 rows on),
    # and greedy answers are to be `model.generate`'s, which computes every row to the end.
    min_rows = 4
    truncated = 0  # prompts cut to fit the context (`_fit_context`)
    virtual_tokens: int | None = None  # a soft prompt's, when one is the adapter (it takes the context)
    one_length = False  # batches of prompts of one length alone (no padding): see `add_adapter`

    def __init__(self, spec: LoadSpec | str, *, batch_size: int = 32, options: object = None) -> None:
        """`spec`: the model and how to load it (a bare path loads with the defaults); `options`: none
        of its own (taken for the `Engine` signature)."""
        import torch

        spec = LoadSpec.of(spec)
        self.tokenizer, self.model = load_causal_lm(spec)
        self.tokenizer.padding_side = "left"
        self.device = torch_device()  # where inputs go: the one device, or the first of a spread model
        self.model.eval()  # already on its device(s): moving a model accelerate spread would break it
        self.identity = hf_identity(spec.dtype)
        self.batch_size = batch_size
        self.chunk_size = 4 * batch_size  # commit often: a killed run keeps what it finished
        self.halve_on_oom = self.device == "cuda"  # batch_size is where CUDA starts; CPU keeps it
        self._torch = torch
        self.adapters: dict[str, Path] = {}
        self._tables: dict = {}  # width -> boolean tables per token id (`_token_tables`)
        self._forward_args = forward_args(self.model)
        self._joins = full_attention(self.model)  # a later batch may join a running one
        self._own_mask = self._joins and getattr(self.model.config, "_attn_implementation", "") == "sdpa"
        # The decoding loop takes a plain argmax a step; a model whose generation config asks for
        # more (a repetition penalty, banned tokens...) decodes through `model.generate` instead.
        self.reference = not plain_greedy(self.model)

    def add_adapter(self, name: str, path: str | Path, *, label: str | None = None) -> None:
        """Load a PEFT adapter beside the others on the same base weights (no reload of the base)."""
        from peft import PeftModel

        if name in self.adapters:
            return
        soft = soft_prompt(adapter_config(path))
        if self.adapters and (soft or self.virtual_tokens is not None):
            raise ValueError(
                f"{path}: a soft prompt (PEFT prompt learning) is loaded alone on its own engine, never "
                "beside other adapters"
            )
        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        else:
            self.model.load_adapter(str(path), adapter_name=name)
        self.model.eval()  # PEFT puts each adapter layer on its base layer's device
        self.adapters[name] = Path(path)
        if soft:  # PEFT's own `generate` puts the virtual tokens (or the prefix) before each prompt
            config = self.model.peft_config[name]
            self.virtual_tokens, self.reference = config.num_virtual_tokens, True
            # PEFT drops the position ids of every soft prompt but a prefix's (which it shifts past the
            # prefix), so left padding would move a prompt's tokens away from its virtual tokens: the
            # answers would depend on the batch (measured: 15 of 20 on the micro model). Unpadded
            # batches, of prompts of one length, give each prompt the answer it gets alone.
            self.one_length = config.peft_type not in ("PREFIX_TUNING", "CARTRIDGE")

    def _using(self, adapter: str | None) -> AbstractContextManager[Any]:
        if adapter is None:
            return self.model.disable_adapter() if self.adapters else contextlib.nullcontext()
        if adapter not in self.adapters:
            raise KeyError(f"adapter {adapter!r} is not loaded (loaded: {sorted(self.adapters)})")
        self.model.set_adapter(adapter)
        return contextlib.nullcontext()

    def prompt_text(self, request: Request) -> str:
        """The text the model reads: the prompt, or the chat messages through the tokenizer's template."""
        if request.messages is None:
            return request.prompt or ""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("chat messages need a tokenizer with a chat template; this one has none")
        return self.tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False
        )

    def generate(
        self, requests: Sequence[Request], *, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        """One greedy completion per request, in request order (grouped by adapter and decoding)."""
        out: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.adapter, r.decoding), []).append(i)
        for (adapter, decoding), idx in groups.items():
            with self._using(adapter):
                done = self._generate([self.prompt_text(requests[i]) for i in idx], decoding, progress)
            for i, c in zip(idx, done, strict=True):
                out[i] = c
        return out  # type: ignore[return-value]

    def _generate(
        self, prompts: list[str], decoding: Decoding, progress: Callable[[int], None] | None
    ) -> list[Completion]:
        torch, tok = self._torch, self.tokenizer
        encoded = self._fit_context(tok(prompts)["input_ids"], decoding.max_new_tokens)  # tokenised once
        lengths = [len(ids) for ids in encoded]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths share a batch
        stops = [s for s in decoding.stop if s]
        decode = self._reference_batch if self.reference else self._decode
        out: list[Completion | None] = [None] * len(prompts)
        pad, ends, start = tok.pad_token_id, set(self.end_ids), 0
        while start < len(order):
            size = self.batch_size
            if self.one_length:  # the next rows of the first one's length (sorted: they are together)
                size = sum(lengths[i] == lengths[order[start]] for i in order[start : start + size])
            batches = [[encoded[i] for i in order[k : k + size]] for k in range(start, len(order), size)]
            t0 = time.perf_counter()
            try:
                # the first batch's rows, or more (later batches join a running one)
                rows = decode(batches, decoding.max_new_tokens, stops, decoding.logit_bias)
            except torch.cuda.OutOfMemoryError:
                if not self.halve_on_oom or self.batch_size == 1:
                    raise
                rows = None
            if rows is None:  # out of memory: free what the batch held (outside the except)
                torch.cuda.empty_cache()
                self.batch_size //= 2  # and it stays halved: longer prompts come later
                continue
            idx, start = order[start : start + len(rows)], start + len(rows)
            elapsed = (time.perf_counter() - t0) / len(idx)
            for row, i in zip(rows, idx, strict=True):
                ids = [t for t in row if t != pad]
                ids = ids[: next((k for k, t in enumerate(ids) if t in ends), len(ids))]  # to the end token
                text = decoding.finish(tok.decode(ids, skip_special_tokens=True))
                out[i] = Completion(text, lengths[i], len(ids), elapsed)
            if progress is not None:
                progress(len(idx))
        return out  # type: ignore[return-value]

    @property
    def end_ids(self) -> list[int]:
        """Every token that ends an answer: the tokenizer's end of sequence and each end token the
        model's generation config lists (an instruct model's end of turn, e.g. `<|eot_id|>`)."""
        if getattr(self, "_end_ids", None) is None:
            listed = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
            listed = [listed] if isinstance(listed, int) else list(listed or [])
            ids = [self.tokenizer.eos_token_id, *listed]
            self._end_ids = sorted({i for i in ids if i is not None})
        return self._end_ids

    @property
    def context(self) -> int | None:
        """The model's context in tokens (its config's `max_position_embeddings`), if it says, less a
        soft prompt's virtual tokens, which take their places before the prompt."""
        context = getattr(self.model.config, "max_position_embeddings", None)
        return context - (self.virtual_tokens or 0) if context is not None else None

    def _fit_context(self, encoded: list[list[int]], max_new: int) -> list[list[int]]:
        """Prompts cut to fit the context with room for `max_new` tokens: their beginning goes (a BOS
        stays), as the question and the generation prompt are at the end. Counted in `truncated`,
        which the run reports; never silent."""
        limit = None if self.context is None else self.context - max_new
        if limit is None or all(len(ids) <= limit for ids in encoded):
            return encoded
        if limit < 1:
            raise ValueError(
                f"max_new_tokens {max_new} leaves no room in the model's context of {self.context}"
            )
        bos, out = self.tokenizer.bos_token_id, []
        for ids in encoded:
            if len(ids) > limit:
                self.truncated += 1
                head = [bos] if bos is not None and ids[0] == bos else []
                ids = head + ids[len(ids) - (limit - len(head)) :]
            out.append(ids)
        return out

    @property
    def info(self) -> dict:
        """What the manifest says of this engine's run: prompts cut to fit the context."""
        return {"context": self.context, "truncated_prompts": self.truncated, "end_token_ids": self.end_ids}

    def _left_padded(self, rows: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Token ids padded on the left and their attention mask, as `tokenizer.pad` makes them."""
        width, pad = max(len(r) for r in rows), self.tokenizer.pad_token_id
        ids = [[pad] * (width - len(r)) + r for r in rows]
        mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        return self._torch.tensor(ids, device=self.device), self._torch.tensor(mask, device=self.device)

    def _forward(
        self, ids: Tensor, mask: Tensor | None, positions: Tensor, cache: Any, logit_bias: Tensor | None = None
    ) -> tuple[Any, Tensor, int]:
        """One forward pass: the cache, and the greedy token of each row's last position (after the
        logit bias, a vector over the vocabulary, when there is one)."""
        extra: dict[str, Any] = {"position_ids": positions} if self._forward_args["position_ids"] else {}
        if self._forward_args["logits_to_keep"]:
            extra["logits_to_keep"] = 1  # a prefill's logits for the last position only
        out = self.model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True, **extra)
        last = out.logits[:, -1]
        if logit_bias is not None:
            last = last + logit_bias
        return out.past_key_values, last.argmax(-1), out.logits.shape[-1]

    def _bias_vector(self, logit_bias: Sequence[tuple[int, float]]) -> Tensor | None:
        """`Decoding.logit_bias` as a vector over the vocabulary (None when there is none)."""
        if not logit_bias:
            return None
        width = self.model.get_output_embeddings().weight.shape[0]
        vector = self._torch.zeros(width, device=self.device)
        for token, bias in logit_bias:
            vector[token] = bias
        return vector

    def _decode(
        self,
        batches: list[list[list[int]]],
        max_new: int,
        stops: list[str],
        logit_bias: Sequence[tuple[int, float]] = (),
    ) -> list[list[int]]:
        """Greedy decoding of the first of `batches` (token ids), and of the next ones that join it
        (`RunningBatch`): a batch joins when it fits, else the running rows take a step, until none
        runs. Returns the new tokens of the batches decoded, in order, padded after each row's stop."""
        if max_new <= 0:
            return [[] for _ in batches[0]]
        run = RunningBatch(self, sum(map(len, batches)), max_new, stops, self._bias_vector(logit_bias))
        taken = 0  # batches taken
        with self._torch.inference_mode():
            while True:
                joined: int | None = None
                if taken < len(batches) and run.fits(batches[taken]):
                    joined, taken = run.join(batches[taken]), taken + 1
                elif run.running:
                    run.step()
                else:
                    return run.tokens()
                run.drop(run.finished(joined), joined is not None)

    def _reference_batch(
        self,
        batches: list[list[list[int]]],
        max_new: int,
        stops: list[str],
        logit_bias: Sequence[tuple[int, float]] = (),
    ) -> list[list[int]]:
        """The first batch through transformers' `model.generate` (the reference the loop matches)."""
        torch, tok = self._torch, self.tokenizer
        ids, mask = self._left_padded(batches[0])
        criteria = []
        if stops:
            width = self.model.get_output_embeddings().weight.shape[0]
            criteria.append(stop_criterion(self._token_tables(width, self.device), ids.shape[1], tok, stops))
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new,
                do_sample=False,
                num_beams=1,
                pad_token_id=tok.pad_token_id,
                eos_token_id=self.end_ids,
                stopping_criteria=criteria or None,
                sequence_bias={(t,): b for t, b in logit_bias} or None,
            )
        return generated[:, ids.shape[1] :].tolist()

    def _token_tables(self, width: int, device: Any) -> dict:
        if width not in self._tables:
            self._tables[width] = token_tables(self.tokenizer, self.end_ids, width, device)
        return self._tables[width]
