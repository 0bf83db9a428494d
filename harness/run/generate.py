"""Generate what the store lacks on one loaded base, committing chunk by chunk (a variant fully
fine-tuned, with no adapter to switch on, generates on its own weights after the others).

A soft prompt (prompt or prefix tuning: an adapter of kind "prompt") generates after the others too,
alone on an engine of its own on the same base (`LazyEngine.apart`), closed when it is done. It is
kept apart because PEFT cannot hold it beside LoRA adapters (one `PeftModel` takes adapters of one
PEFT type: loading a prompt-learning one onto a model with LoRA fails), and because its virtual
tokens must go in once, through PEFT's `generate`, not at every step of the shared engine's own
KV-cache loop (`HFEngine` decodes through `generate` when it holds one).

Before anything loads, the pipeline has checked every adapter (`LazyEngine.preflight`); here an engine
on a server says which variants' models it lacks. Then the requests go out in chunks of
the engine's `chunk_size`: for an engine that mixes adapters in one call (vLLM, a server) each chunk
holds every variant's requests for a run of questions; for one that switches adapters (HF + PEFT) a
chunk holds one adapter's. Each finished chunk is one transaction of the results store (inserts are
idempotent), so a killed run keeps what it committed and the next run generates only the rest.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from core.progress import progress_bar
from harness.engines import Decoding, Request
from harness.run.engine import LazyEngine
from harness.run.plan import Item
from harness.store import Store


def adapter_labels(adapters: dict) -> dict[str, str]:
    """{adapter identity: its human name}: its method (or variant), `-s<seed>` added when the run
    trains several seeds. A server engine serves each adapter under this name (`generation.openai`)."""
    several = len({a.seed for seeded in adapters.values() for a in seeded}) > 1
    return {
        a.identity: f"{a.name}-s{a.seed}" if several and a.seed is not None else a.name
        for seeded in adapters.values()
        for a in seeded
    }


def generate_missing(
    store: Store,
    plan: list[Item],
    engine: LazyEngine,
    adapters: dict,
    decoding: Decoding,
    *,
    timings: dict,
) -> int:
    """Generate every item whose key the store lacks; returns how many were generated."""
    t0 = time.time()
    cached = store.generations(p.key for p in plan)
    missing: dict[str, Item] = {}
    for p in plan:
        if p.key not in cached:
            missing.setdefault(p.key, p)  # variants sharing a prompt and a model generate it once
    by_identity = {a.identity: a for seeded in adapters.values() for a in seeded}
    labels = adapter_labels(adapters)
    alone = {i for i, a in by_identity.items() if a.alone}
    shared = [p for p in missing.values() if p.adapter not in alone]
    if missing:
        # the shared engine loads (and a server is checked) before the bar: an error is one line
        ready = None
        if shared:  # the base and every LoRA adapter on it
            needed = sorted({p.adapter for p in shared} - {None})
            names = {i: engine.with_adapter(i, by_identity[i].path, labels[i]) for i in needed}
            engine.check({p.variant: labels.get(p.adapter) for p in shared})
            ready = _prepare(shared, engine, names, decoding)
        with progress_bar("generating", len(missing)) as advance:
            if ready:
                _run(store, *ready, advance)
            for identity in sorted({p.adapter for p in missing.values()} & alone):
                own, name = engine.alone(by_identity[identity], labels[identity])
                try:
                    items = [p for p in missing.values() if p.adapter == identity]
                    _run(store, *_prepare(items, own, {identity: name}, decoding), advance)
                finally:
                    own.close()
    timings["generate_s"] = round(time.time() - t0, 2)
    return len(missing)


def _prepare(items, engine, names: dict[str, str | None], decoding):
    """The loaded engine, `items` in chunks and their requests, each naming its adapter on the engine
    (`names`: adapter identity -> name; None, or absent for the base: no adapter)."""
    live = engine.get()
    chunks = _chunks(items, live.mixes_adapters, live.chunk_size)
    requests = [
        [Request(p.prompt, adapter=names.get(p.adapter), decoding=decoding) for p in c] for c in chunks
    ]
    return live, chunks, requests


def _run(store, live, chunks, requests, advance) -> None:
    """Generate chunk by chunk, each committed as one transaction as it finishes."""
    for i, done in _each_chunk(live, requests, advance):
        store.put_generations((p.key, asdict(c) | {"answer": c.text}) for p, c in zip(chunks[i], done))


def _chunks(items: list[Item], mixes_adapters: bool, size: int) -> list[list[Item]]:
    if mixes_adapters:
        # question by question, every variant's request for it together: each call holds them all
        order = sorted(range(len(items)), key=lambda i: (items[i].question.id, i))
        ordered = [items[i] for i in order]
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]
    groups: dict[str | None, list[Item]] = {}
    for p in items:
        groups.setdefault(p.adapter, []).append(p)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def _each_chunk(engine, chunks: list[list[Request]], progress):
    """(index, completions) per chunk as it finishes: the engine's own `generate_chunks` where it has
    one (Ray: in parallel, in any order), else one `generate` call after another."""
    if hasattr(engine, "generate_chunks"):
        yield from engine.generate_chunks(chunks, progress=progress)
        return
    for i, chunk in enumerate(chunks):
        yield i, engine.generate(chunk, progress=progress)
