"""An engine loaded on first need: the run's engine on the base model is shared by every variant's
adapter and the built-in judge's (PEFT multi-adapter on one base), and never loaded when everything it
would generate is already in the store. A judge on another model (`judge.hf`) gets one of its own."""

from __future__ import annotations

from core.cache import digest
from harness.engines import ENGINES, Engine


class LazyEngine:
    def __init__(
        self,
        kind: str,
        path: str,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        batch_size: int = 32,
        dtype: str = "auto",
    ):
        self.kind = ENGINES[kind]
        self.identity = self.kind.identity(dtype)  # known before anything loads: it is in every key
        self._load = {
            "revision": revision,
            "trust_remote_code": trust_remote_code,
            "batch_size": batch_size,
            "dtype": dtype,
        }
        self._path = path
        self._engine: Engine | None = None

    @classmethod
    def for_base(cls, config, base) -> LazyEngine:
        g = config.generation
        return cls(
            g.engine,
            base.path,
            revision=base.revision,
            trust_remote_code=base.trust_remote_code,
            batch_size=g.batch_size,
            dtype=g.dtype,
        )

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def get(self) -> Engine:
        if self._engine is None:
            self._engine = self.kind.make(self._path, **self._load)
        return self._engine

    def with_adapter(self, identity: str, path) -> str:
        """Load the adapter (once) and return the name requests use for it."""
        name = "a" + digest(identity, 8)  # PEFT adapter names must be plain identifiers
        self.get().add_adapter(name, path)
        return name
