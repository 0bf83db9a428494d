"""Where training and inference run: CUDA (bf16 where supported) when present, else CPU, same code."""

from __future__ import annotations


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
