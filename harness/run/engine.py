"""An engine loaded on first need: the run's engine on the base model is shared by every variant's
adapter and the built-in judge's (one base, many adapters), and never loaded when everything it would
generate is already in the store. A judge on another model (`judge.hf`) gets one of its own.

`generation.ray` wraps the configured engine in Ray actors; the identity (and so every generation
key) stays the wrapped engine's, on the device its actors use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.cache import digest
from core.errors import InputError
from harness.engines import ENGINES, Engine
from harness.engines.peft_files import adapter_config, base_problem
from harness.engines.types import EngineUnavailable, LoadSpec

if TYPE_CHECKING:
    from harness.artifacts.model import BaseModel
    from harness.config.bench import BenchConfig
    from harness.config.inputs import ModelConfig
    from harness.engines.ray import RayOptions
    from harness.training.adapters import Adapter


def loading(model: ModelConfig) -> dict[str, Any]:
    """How `model` (a ModelConfig) says to load: dtype, device map, attention, for every engine made."""
    return {
        "dtype": model.dtype,
        "device_map": model.device_map,
        "attn_implementation": model.attn_implementation,
    }


class Located(Protocol):
    """Where a model is: the resolved base, a judge's or a generator's settings."""

    @property
    def path(self) -> str: ...
    @property
    def revision(self) -> str | None: ...
    @property
    def trust_remote_code(self) -> bool: ...


def load_spec(where: Located, model: ModelConfig) -> LoadSpec:
    """How an engine of a run loads the model `where` names: at its revision, with or without its own
    code, and as `model.*` says (dtype, device map, attention), as every model of the run loads."""
    return LoadSpec(where.path, where.revision, where.trust_remote_code, **loading(model))


class LazyEngine:
    """An engine of `kind` on the model of `spec` (a bare path: the defaults), made on first `get`."""

    def __init__(
        self,
        kind: str,
        spec: LoadSpec | str,
        *,
        batch_size: int = 32,
        options: Any = None,
        ray: RayOptions | None = None,
        source: str = "(config)",
    ) -> None:
        self.name, self.kind = kind, ENGINES[kind]
        self.spec = LoadSpec.of(spec)
        if self.kind.options is not None and options is None:
            options = self.kind.options()
        self.identity = self.kind.identity(self.spec.dtype, options)  # known before loading: in every key
        if ray is not None:
            from harness.engines.ray import ray_identity

            self.identity = ray_identity(self.identity, ray)
        self.batch_size, self.options = batch_size, options  # what the engine is made with, beside `spec`
        self._ray, self._source = ray, source
        self._engine: Engine | None = None
        self.labels: dict[str, str] = {}  # adapter name -> its label

    @classmethod
    def for_base(cls, config: BenchConfig, base: BaseModel) -> LazyEngine:
        g = config.generation
        return cls(
            g.engine,
            load_spec(base, config.model),
            batch_size=g.batch_size,
            options=getattr(g, g.engine, None),
            ray=g.ray,
            source=config.source,
        )

    def _like(self, **changes: Any) -> LazyEngine:
        """A copy of this one, not loaded and holding no adapter, with `changes` to its attributes."""
        other = LazyEngine.__new__(LazyEngine)
        other.__dict__ |= self.__dict__ | {"_engine": None, "labels": {}} | changes
        return other

    def for_model(self, path: str | Path) -> LazyEngine:
        """An engine like this one on another model folder: a variant fully fine-tuned (no adapter to
        switch on the shared base) generates on its own weights, loaded when needed."""
        return self._like(spec=self.spec.on(path))  # a folder of ours: no hub revision

    def alone(self, adapter: Adapter, label: str) -> tuple[LazyEngine, str | None]:
        """An engine of its own for an adapter that cannot share this one (`Adapter.alone`), loaded when
        needed, and the name requests use for the adapter on it: a full fine-tune's own weights (no
        adapter: None), or the same base with the soft prompt as its one adapter."""
        if adapter.kind == "full":
            return self.for_model(str(adapter.path)), None
        other = self.apart()
        return other, other.with_adapter(adapter.identity, adapter.path, label)

    def apart(self) -> LazyEngine:
        """An engine like this one on the same base (path, revision and all), loaded when needed and
        holding no adapter yet: a soft prompt (PEFT prompt learning) generates on one of its own, as
        PEFT cannot load it beside the shared engine's LoRA adapters (different PEFT types on one
        `PeftModel`), and an HF engine holding one decodes through `generate` (see `HFEngine`)."""
        return self._like()

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def _fail(self, message: str) -> InputError:
        return InputError(self._source, message, field="generation.engine")

    def preflight(self, adapters: list[tuple[str, Path]]) -> None:
        """Before loading: every adapter is a PEFT folder trained on this base, and one the engine can
        serve (its `preflight`, e.g. vLLM's rank limit); else one InputError listing the problems."""
        problems = []
        for label, path in adapters:
            try:
                wrong = base_problem(adapter_config(path), self.spec.path)
            except ValueError as e:
                wrong = str(e)
            if wrong:
                problems.append(f"adapter {label!r}: {wrong}")
        if self.kind.preflight is not None and not problems:
            settled, problems = self.kind.preflight(adapters, self.options, self.spec.path)
            if not self.loaded:
                self.options = settled
        if problems:
            raise self._fail("; ".join(dict.fromkeys(problems)))

    def get(self) -> Engine:
        if self._engine is None:
            make = {"batch_size": self.batch_size, "options": self.options}
            try:
                if self._ray is not None:
                    from harness.engines.ray import RayEngine

                    self._engine = RayEngine(self.name, self.spec, make, self._ray, self.identity)
                else:
                    self._engine = self.kind.make(self.spec, **make)
            except EngineUnavailable as e:
                raise self._fail(f"{self.name}: {e}") from None
        return self._engine

    def with_adapter(self, identity: str, path: str | Path, label: str | None = None) -> str:
        """Load the adapter (once) and return the name requests use for it."""
        name = "a" + digest(identity, 8)  # PEFT adapter names must be plain identifiers
        if name not in self.labels:
            try:
                self.get().add_adapter(name, path, label=label)
            except ValueError as e:  # an adapter the engine cannot serve (vLLM's checks)
                raise self._fail(str(e)) from None
            self.labels[name] = label or name
        return name

    def check(self, variants: dict[str, str | None]) -> None:
        """Engines on a server say which variants' models it does not serve (InputError)."""
        check = getattr(self.get(), "check", None)
        problems = check(variants) if check is not None else []
        if problems:
            raise self._fail("; ".join(problems))

    def info(self) -> dict:
        """What the manifest says of the engine: its identity, whether it loaded, what it reported."""
        out = self.identity | {"loaded": self.loaded}
        if self._ray is not None:
            out["ray"] = self._ray.model_dump() | {"replaced_workers": getattr(self._engine, "replaced", 0)}
        details = getattr(self._engine, "info", None)
        return out | ({"details": details} if hasattr(self._engine, "info") else {})

    def close(self) -> None:
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()
        self._engine = None
