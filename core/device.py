"""Where training and inference run: CUDA (bf16 where supported) when present, else CPU, same code;
and how a model is loaded there (`model.dtype`, `model.attn_implementation`), decided here once for
every loader (the HF engine, vLLM, training)."""

from __future__ import annotations

from core.errors import InputError

DTYPES = ("auto", "float32", "bfloat16", "float16")


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def training_precision() -> tuple[bool, bool]:
    """(use_cpu, bf16) for a transformers/TRL training config."""
    import torch

    if torch.cuda.is_available():
        return False, torch.cuda.is_bf16_supported()
    return True, False


def device_class() -> str:
    """The kind of device generation runs on ("cuda" or "cpu"): part of every generation key, since
    the same model can give other answers on other hardware."""
    return torch_device()


def resolve_dtype(name: str) -> str:
    """The dtype a model runs in: `name`, or for "auto" bfloat16 on a CUDA GPU that supports it (half
    the memory of float32, the range of it) and float32 elsewhere (a CPU is slow in half precision, and
    float32 is what the reference answers were measured in)."""
    if name != "auto":
        return name
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"


def check_dtype(name: str, source: str) -> str:
    """The resolved dtype, or an InputError (`model.dtype`) when this device cannot run it: checked
    before anything loads, so a run stops with one line rather than deep inside a forward pass. A GPU
    without bfloat16 says so itself; elsewhere one small matrix product on the device shows it."""
    import torch

    dtype, device = resolve_dtype(name), torch_device()
    if device == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise InputError(
            source, "this GPU does not support bfloat16: use float16, float32 or auto", field="model.dtype"
        )
    try:
        x = torch.ones(2, 2, dtype=getattr(torch, dtype), device=device)
        torch.matmul(x, x)
    except RuntimeError as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(
            source,
            f"a matrix product in {dtype} fails on {device} ({why}): use float32 or auto",
            field="model.dtype",
        ) from None
    return dtype


def resolve_attention(name: str, dtype: str) -> str | None:
    """What `from_pretrained(attn_implementation=)` gets: an explicit name as given; for "auto",
    flash_attention_2 when the model runs on CUDA in half precision (the only case it serves) and
    `flash_attn` imports, else None: transformers' own choice, sdpa, or eager for a model without it
    (asking for sdpa by name would fail on such a model)."""
    if name != "auto":
        return name
    if torch_device() != "cuda" or resolve_dtype(dtype) not in ("bfloat16", "float16"):
        return None
    try:
        import flash_attn  # noqa: F401  (installed is not enough: a build for another torch fails here)
    except ImportError:
        return None
    return "flash_attention_2"


def peak_memory_mib() -> float:
    """This process's peak resident memory so far, in MiB (`getrusage`): what a run had reached by
    the end of each phase, as the manifest records it."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
