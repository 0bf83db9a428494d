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

Runs sharing a cache split the work: each claims a chunk in the store just before generating it
(`harness.store.Claims`), leaves out what another live run has claimed, and at the end waits for those
rows, polling the store, taking over any whose run died. Every answer depends only on its key, so the
rows are a lone run's; a run alone claims every chunk whole and generates exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING

from core.progress import console, progress_bar
from harness.engines import Decoding, Engine, Request
from harness.run.engine import LazyEngine
from harness.run.plan import Item
from harness.store import Claims, Store

if TYPE_CHECKING:
    from harness.engines.types import Completion
    from harness.training import Adapter

Chunks = list[list[Item]]
Prepared = tuple[Engine, Chunks, list[list[Request]]]  # the loaded engine, the chunks, their requests
Pairs = Iterable[tuple[list[Item], list[Request]]]  # chunks, each with its requests
POLL_S = 0.5  # how often a run waiting for another's answers looks at the store


def adapter_labels(adapters: dict[str, list[Adapter]]) -> dict[str, str]:
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
    adapters: dict[str, list[Adapter]],
    decoding: Decoding,
    *,
    timings: dict[str, float],
) -> int:
    """Generate every item whose key the store lacks (another run sharing the store may make some of
    them); returns how many this run generated."""
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
    made = 0
    if missing:
        # the shared engine loads (and a server is checked) before the bar: an error is one line
        ready = None
        if shared:  # the base and every LoRA adapter on it
            needed = sorted({p.adapter for p in shared if p.adapter is not None})
            names: dict[str, str | None] = {
                i: engine.with_adapter(i, by_identity[i].path, labels[i]) for i in needed
            }
            engine.check({p.variant: labels.get(p.adapter) if p.adapter else None for p in shared})
            ready = _prepare(shared, engine, names, decoding)
        with progress_bar("generating", len(missing)) as advance:
            if ready:
                made += _run(store, *ready, advance)
            for identity in sorted({p.adapter for p in missing.values() if p.adapter is not None} & alone):
                own, name = engine.alone(by_identity[identity], labels[identity])
                try:
                    items = [p for p in missing.values() if p.adapter == identity]
                    made += _run(store, *_prepare(items, own, {identity: name}, decoding), advance)
                finally:
                    own.close()
    timings["generate_s"] = round(time.time() - t0, 2)
    return made


def _prepare(
    items: list[Item], engine: LazyEngine, names: dict[str, str | None], decoding: Decoding
) -> Prepared:
    """The loaded engine, `items` in chunks and their requests, each naming its adapter on the engine
    (`names`: adapter identity -> name; None, or absent for the base: no adapter)."""
    live = engine.get()
    chunks = _chunks(items, live.mixes_adapters, live.chunk_size)
    requests = [
        [Request(p.prompt, adapter=names.get(p.adapter) if p.adapter else None, decoding=decoding) for p in c]
        for c in chunks
    ]
    return live, chunks, requests


def _run(
    store: Store, live: Engine, chunks: Chunks, requests: list[list[Request]], advance: Callable[[int], None]
) -> int:
    """Generate chunk by chunk, each claimed first and committed as one transaction as it finishes;
    then wait for what other runs had claimed (`_wait_for`). Returns how many this run generated."""
    with Claims(store) as claims:
        skipped: list[tuple[Item, Request]] = []  # what others held or made: filled as chunks are claimed
        made = _generate(store, live, _claimed(chunks, requests, claims, skipped), advance, claims.owner)
        return made + _wait_for(store, live, skipped, advance, claims)


def _claimed(
    chunks: Chunks, requests: list[list[Request]], claims: Claims, skipped: list[tuple[Item, Request]]
) -> Pairs:
    """Each chunk as this run claims it, just before it is generated: what another run holds (or has
    stored meanwhile) is left out of it, into `skipped`; a chunk left empty is passed over."""
    for items, reqs in zip(chunks, requests, strict=True):
        mine = claims.take([p.key for p in items])
        if len(mine) == len(items):  # alone: always
            yield items, reqs
            continue
        skipped += [(p, r) for p, r in zip(items, reqs, strict=True) if p.key not in mine]
        kept = [(p, r) for p, r in zip(items, reqs, strict=True) if p.key in mine]
        if kept:
            yield [p for p, _ in kept], [r for _, r in kept]


def _generate(store: Store, live: Engine, pairs: Pairs, advance: Callable[[int], None], owner: str) -> int:
    """Generate each chunk of `pairs` and commit it (releasing `owner`'s claims on it) as it finishes:
    on the engine's own `generate_chunks` where it has one (Ray: every chunk at once, each claimed
    first; they finish in any order), else one `generate` call after another. Returns how many."""
    if hasattr(live, "generate_chunks"):
        ready = list(pairs)
        finished: Iterable[tuple[list[Item], list[Completion]]] = (
            (ready[i][0], done) for i, done in live.generate_chunks([r for _, r in ready], progress=advance)
        )
    else:
        finished = ((items, live.generate(reqs, progress=advance)) for items, reqs in pairs)
    made = 0
    for items, done in finished:
        store.put_generations(
            ((p.key, asdict(c) | {"answer": c.text}) for p, c in zip(items, done, strict=True)), owner=owner
        )
        made += len(items)
    return made


def _wait_for(
    store: Store,
    live: Engine,
    skipped: list[tuple[Item, Request]],
    advance: Callable[[int], None],
    claims: Claims,
) -> int:
    """Wait until every `skipped` item's row is in the store (each advancing the bar as it lands),
    polling every POLL_S seconds; what a run that died had claimed falls to this one, which generates
    it. Returns how many this run generated."""
    pending = {p.key: (p, r) for p, r in skipped}
    made, said = 0, False
    while pending:
        landed = store.stored(pending)
        for key in landed:
            del pending[key]
        advance(len(landed))
        mine = claims.take(list(pending)) if pending else set()
        if mine:
            own = [pending.pop(k) for k in list(pending) if k in mine]
            made += _generate(store, live, _rechunked(live, own), advance, claims.owner)
        elif pending:
            if not said:
                said = True
                console.print(f"waiting for {len(pending)} answers another run is making", highlight=False)
            time.sleep(POLL_S)
    return made


def _rechunked(live: Engine, pairs: list[tuple[Item, Request]]) -> Pairs:
    """(item, request) pairs in the engine's chunks (`_chunks`), each with its requests."""
    requests = {p.key: r for p, r in pairs}
    chunks = _chunks([p for p, _ in pairs], live.mixes_adapters, live.chunk_size)
    return [(c, [requests[p.key] for p in c]) for c in chunks]


def _chunks(items: list[Item], mixes_adapters: bool, size: int) -> Chunks:
    if mixes_adapters:
        # question by question, every variant's request for it together: each call holds them all
        order = sorted(range(len(items)), key=lambda i: (items[i].question.id, i))
        ordered = [items[i] for i in order]
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]
    groups: dict[str | None, list[Item]] = {}
    for p in items:
        groups.setdefault(p.adapter, []).append(p)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def _each_chunk(
    engine: Engine, chunks: list[list[Request]], progress: Callable[[int], None]
) -> Iterator[tuple[int, list[Completion]]]:
    """(index, completions) per chunk as it finishes: the engine's own `generate_chunks` where it has
    one (Ray: in parallel, in any order), else one `generate` call after another. Claims nothing and
    stores nothing: bench/engines.py times engines with it (the stage itself goes through `_run`)."""
    if hasattr(engine, "generate_chunks"):
        yield from engine.generate_chunks(chunks, progress=progress)
        return
    for i, chunk in enumerate(chunks):
        yield i, engine.generate(chunk, progress=progress)
