"""How training reads its model and sizes its rows: the base (or the full model training continues)
loaded as a run loads it, with the head a method trains (a causal LM, or a reward model's classifier),
QLoRA's 4-bit base, the longest training row in tokens, and the memory training held."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from harness.engines.types import LoadSpec
    from harness.training.job import AdapterJob


def row_tokens(row: dict, tokenizer: Any) -> int:
    """The length in tokens of the longest sequence a training row becomes in TRL: the prompt followed
    by its completion (or by either preference answer), through the chat template when they are
    messages, else as text with the end-of-sequence token TRL appends; a CPT document likewise."""
    if "text" in row:
        return _tokens(row["text"], tokenizer)
    answers = [row[k] for k in ("completion", "chosen", "rejected") if k in row]
    return max(_tokens(row["prompt"] + a, tokenizer) for a in answers)


def _tokens(x: str | list[dict], tokenizer: Any) -> int:
    if isinstance(x, list):
        return len(tokenizer.apply_chat_template(x, tokenize=True, return_dict=True)["input_ids"])
    return len(tokenizer(x)["input_ids"]) + 1


def max_length_of(
    given: int | None, rows: list[dict], tokenizer: Any, model: PreTrainedModel
) -> tuple[int, str]:
    """(max_length, how it was decided): as configured ("config"); else the longest training row
    ("data"), so that no row is cut and no window is longer than the data needs, capped at the
    model's context ("model context"), which it cannot read past."""
    if given is not None:
        return given, "config"
    longest = max(row_tokens(r, tokenizer) for r in rows)
    context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if context is not None and longest > context:
        return context, "model context"
    return longest, "data"


def load_for_training(job: AdapterJob, start: Path | None, head: str | None = None) -> tuple[Any, Any]:
    """Tokenizer and model training starts from, loaded as a run loads the base (`model.dtype`, ...):
    the base, or `start`, a fully fine-tuned model this one continues (DPO from a full SFT)."""
    from harness.engines.hf import load_causal_lm

    spec = job.load_spec if start is None else job.load_spec.on(start)
    head = head or job.method.head
    if job.quantization == "4bit":
        return _load_4bit(spec, head)
    return load_causal_lm(spec, head=head)


def _load_4bit(spec: LoadSpec, head: str) -> tuple[Any, Any]:
    """QLoRA's base: NF4 weights, double quantisation, bf16 compute (fp16 on a GPU without bf16), on the
    GPU; bitsandbytes and the checkpoint decide the other layers' dtype, not `model.dtype`. PEFT's
    preparation then freezes every base weight and keeps the rest in fp32; the Trainer turns gradient
    checkpointing on from the arguments, as for any other run. `resolve_adapters` has checked CUDA
    and bitsandbytes before anything trains."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoTokenizer, BitsAndBytesConfig

    from core.device import resolve_attention
    from harness.engines.hf_model import head_options, model_class

    path, load = spec.path, {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(path, **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    compute = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute),
    )
    model = model_class(head).from_pretrained(
        path,
        **load,
        quantization_config=quantization,
        device_map=spec.device_map or "cuda",
        attn_implementation=resolve_attention(spec.attn_implementation, compute),
        **head_options(head, tokenizer),
    )
    return tokenizer, prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def peak_memory(cuda: bool) -> dict:
    """The most memory training held: on CUDA the GPU's allocated peak since `_train` began; else the
    process's resident peak over its life so far (Linux counts it in KiB), an upper bound."""
    import torch

    if cuda:
        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20), "peak_memory_of": "cuda"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_mb": round(rss / 1024), "peak_memory_of": "process max RSS"}
