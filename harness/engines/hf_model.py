"""Loading a transformers causal LM as a run does, and what the HF engine's decoding loop needs to
know of the loaded model (whether greedy decoding is a bare argmax, whether caches may join, which
optional arguments its forward takes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.device import resolve_attention, resolve_dtype, torch_device
from harness.engines.types import LoadSpec

if TYPE_CHECKING:
    import torch


def load_causal_lm(spec: LoadSpec | str, *, head: str = "causal-lm") -> tuple[Any, Any]:
    """Tokenizer and model through `from_pretrained`, exactly as for a hub model; a tokenizer without
    a pad token pads with its end-of-sequence token. `trust_remote_code` stays off unless the user's
    config turns it on. A bare path loads with `LoadSpec`'s defaults, which are `model.*`'s, so a caller
    that passes no settings loads as a run does: `dtype` and `attn_implementation` through
    `core.device` ("auto": bfloat16 on a GPU that has it, else float32; flash attention where it
    serves), the weights straight onto the one device (never a full copy in CPU memory first), or with
    `device_map` "auto" spread by accelerate over the GPUs (and CPU memory) a model bigger than one
    needs. `head` "reward" loads the same weights as a sequence classifier with one output (a reward
    model to train: its score head is new)."""
    import torch
    from transformers import AutoTokenizer

    spec = LoadSpec.of(spec)
    load = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(spec.path, **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model_class(head).from_pretrained(
        spec.path,
        **load,
        dtype=getattr(torch, resolve_dtype(spec.dtype)),
        device_map=spec.device_map or torch_device(),
        attn_implementation=resolve_attention(spec.attn_implementation, spec.dtype),
        **head_options(head, tokenizer),
    )
    return tokenizer, model


def model_class(head: str) -> Any:
    """The transformers auto class of a `head`: "causal-lm" or "reward" (a sequence classifier)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return {"causal-lm": AutoModelForCausalLM, "reward": AutoModelForSequenceClassification}[head]


def head_options(head: str, tokenizer: Any) -> dict:
    """`from_pretrained` options a head needs: a reward model scores with one output, read at the last
    token that is not padding (so it must know the pad token)."""
    if head == "reward":
        return {"num_labels": 1, "pad_token_id": tokenizer.pad_token_id}
    return {}


def plain_greedy(model: torch.nn.Module) -> bool:
    """Whether greedy `generate` on this model is a bare argmax a step: no logits processor from its
    generation config (repetition penalty, banned or forced tokens, a minimum length), no encoder."""
    from transformers import GenerationConfig

    config, default = getattr(model, "generation_config", None), GenerationConfig()
    if getattr(model.config, "is_encoder_decoder", False):
        return False
    return config is None or all(getattr(config, k, None) == getattr(default, k, None) for k in _PROCESSORS)


_PROCESSORS = (
    "repetition_penalty",
    "no_repeat_ngram_size",
    "bad_words_ids",
    "min_length",
    "min_new_tokens",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "sequence_bias",
)


def full_attention(model: torch.nn.Module) -> bool:
    """Whether every layer of this transformers model attends to all the past (no sliding window,
    no chunks): then a decoding step's mask is the padding mask, and caches of equal length join."""
    config = model.config
    return (
        type(model).__module__.startswith("transformers.models.")
        and not getattr(config, "sliding_window", None)
        and not getattr(config, "attention_chunk_size", None)
        and all(t == "full_attention" for t in getattr(config, "layer_types", None) or ())
    )


def forward_args(model: torch.nn.Module) -> dict[str, bool]:
    """Which of the decoding loop's optional arguments the model's forward takes."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return {name: name in params for name in ("position_ids", "logits_to_keep")}
