"""The run's config as the reports read it: the part of `harness.config.BenchConfig` they use, as
Protocols (the reports never import the harness, and tests pass simple stand-ins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Variant(Protocol):
    """A variant's settings (`harness.config.VariantConfig`)."""

    @property
    def name(self) -> str: ...

    @property
    def retriever(self) -> str | None: ...

    @property
    def adapter(self) -> str | None: ...

    @property
    def adapter_path(self) -> str | None: ...


class RunConfig(Protocol):
    """What aggregation, the decision and the knowledge attribution read of a bench config."""

    @property
    def variants(self) -> Sequence[Variant]: ...

    @property
    def baseline(self) -> str: ...

    @property
    def metrics(self) -> Sequence[str]: ...

    @property
    def seed(self) -> int: ...

    @property
    def bootstrap_samples(self) -> int: ...

    def decision_metric(self) -> str | None: ...
