"""From the config to ready artifacts, each built only when missing from the cache and keyed by what
determines it: the suite, the base model, every variant's adapter (and the built-in judge's), and the
retrievers with their indexes."""

from harness.artifacts.adapters import adapter_job, judge_adapter, primary, resolve_adapters
from harness.artifacts.model import BaseModel, resolve_model
from harness.artifacts.retrievers import resolve_retrievers
from harness.artifacts.suite import load_suite

__all__ = [
    "BaseModel",
    "adapter_job",
    "judge_adapter",
    "load_suite",
    "primary",
    "resolve_adapters",
    "resolve_model",
    "resolve_retrievers",
]
