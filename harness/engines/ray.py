"""Data parallelism with Ray: `generation.ray: {workers: N}` runs N copies of the configured engine as
Ray actors (one GPU each when there are GPUs) and spreads chunks of requests over them.

Only the driver writes the results store: `generate_chunks` yields each chunk as it finishes, and the
generation stage commits it in one transaction (inserts are idempotent). An actor that dies loses only
the chunk it was working on: a fresh actor takes its place and the chunk is sent again, up to
`max_chunk_retries` times. A killed driver takes its actors with it; the rerun generates only what the
store lacks.

On a cluster (`address: auto` or `ray://...`), adapter folders must be on a filesystem every node
reads at the same path.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from harness.engines.types import Completion, LoadSpec, Request


class RayOptions(BaseModel):
    """`generation.ray`: how many copies of the engine, where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(2, ge=1, le=1024, description="Engine copies (Ray actors) generating at once.")
    address: str | None = Field(
        None,
        description="A Ray cluster to join ('auto', 'ray://host:10001'); none: start Ray on this machine.",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a Ray started here (none: all).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each actor reserves.")
    gpus_per_worker: float | None = Field(
        None, ge=0, description="GPUs each actor reserves; none: 1 when this machine has a GPU, else 0."
    )
    max_chunk_retries: int = Field(
        2, ge=0, le=10, description="Times a chunk is resent after its actor died."
    )


def gpus_per_worker(options: RayOptions) -> float:
    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    from core.device import torch_device

    return 1.0 if torch_device() == "cuda" else 0.0


def ray_identity(inner: dict, options: RayOptions) -> dict:
    """The wrapped engine's identity, on the device the actors use: Ray only spreads the work."""
    return inner | {"device": "cuda" if gpus_per_worker(options) > 0 else "cpu"}


_ACTOR: Any = None


def _actor_class() -> Any:
    """The actor class, defined on first use so that importing this module needs no Ray."""
    global _ACTOR
    if _ACTOR is None:
        import ray

        @ray.remote
        class EngineActor:
            def __init__(self, kind: str, spec: LoadSpec, make: dict[str, Any]) -> None:
                from harness.engines import ENGINES

                self.engine = ENGINES[kind].make(spec, **make)
                self.loaded: set[str] = set()

            def describe(self) -> dict:
                return {
                    "pid": os.getpid(),
                    "chunk_size": self.engine.chunk_size,
                    "mixes_adapters": self.engine.mixes_adapters,
                }

            def generate(self, requests: list[Request], adapters: dict) -> list[Completion]:
                wanted = cast("set[str]", {r.adapter for r in requests} - {None})
                for name in wanted - self.loaded:
                    path, label = adapters[name]
                    self.engine.add_adapter(name, path, label=label)
                    self.loaded.add(name)
                return self.engine.generate(requests)

        _ACTOR = EngineActor
    return _ACTOR


class RayEngine:
    """N engine actors behind the `Engine` signature, plus `generate_chunks` for the stage's commits."""

    def __init__(
        self, kind: str, spec: LoadSpec, make: dict[str, Any], options: RayOptions, identity: dict
    ) -> None:
        """Actors each making `ENGINES[kind]` of `spec` with `make` (batch size, options)."""
        import ray

        self._started_ray = False
        if not ray.is_initialized():
            init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if options.address:
                init["address"] = options.address
            elif options.num_cpus:
                init["num_cpus"] = options.num_cpus
            # the actors import the project: ship its folder's path, not its files
            init["runtime_env"] = {"env_vars": {"PYTHONPATH": _project_path()}}
            ray.init(**init)
            self._started_ray = True
        self._ray = ray
        self.options = options
        self.identity = identity
        self._make = lambda: (
            _actor_class()
            .options(num_cpus=options.cpus_per_worker, num_gpus=gpus_per_worker(options))
            .remote(kind, spec, make)
        )
        self.actors = [self._make() for _ in range(options.workers)]
        info = ray.get(self.actors[0].describe.remote())
        self.chunk_size, self.mixes_adapters = info["chunk_size"], info["mixes_adapters"]
        self.adapters: dict[str, tuple[str, str | None]] = {}
        self.replaced = 0  # actors that died and were replaced (the manifest and tests read it)

    def add_adapter(self, name: str, path: str | Path, *, label: str | None = None) -> None:
        self.adapters[name] = (str(path), label)  # each actor loads it when a request first needs it

    def generate(
        self, requests: Sequence[Request], *, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        """Spread over the actors in about equal parts; completions in request order."""
        requests = list(requests)
        size = max(1, -(-len(requests) // len(self.actors)))
        size = min(size, self.chunk_size)
        chunks = [requests[i : i + size] for i in range(0, len(requests), size)]
        done: dict[int, list[Completion]] = dict(self.generate_chunks(chunks, progress=progress))
        return [c for i in range(len(chunks)) for c in done[i]]

    def generate_chunks(
        self, chunks: Sequence[Sequence[Request]], *, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[int, list[Completion]]]:
        """(index, completions) of each chunk as it finishes, in any order. Each actor has one chunk in
        flight; a chunk whose actor died goes to a fresh actor."""
        ray = self._ray
        todo = deque(range(len(chunks)))
        tries = [0] * len(chunks)
        running: dict = {}  # object ref -> (actor slot, chunk index)
        idle = deque(range(len(self.actors)))
        while todo or running:
            while todo and idle:
                slot, i = idle.popleft(), todo.popleft()
                ref = self.actors[slot].generate.remote(list(chunks[i]), self.adapters)
                running[ref] = (slot, i)
            ready, _ = ray.wait(list(running), num_returns=1)
            slot, i = running.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayActorError:
                tries[i] += 1
                if tries[i] > self.options.max_chunk_retries:
                    raise RuntimeError(
                        f"a Ray worker died {tries[i]} times on the same chunk of {len(chunks[i])} requests"
                    ) from None
                self.actors[slot] = self._make()
                self.replaced += 1
                todo.appendleft(i)
                idle.append(slot)
                continue
            idle.append(slot)
            if progress is not None:
                progress(len(chunks[i]))
            yield i, result

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []
        if self._started_ray:
            self._ray.shutdown()


def _project_path() -> str:
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
