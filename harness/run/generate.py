"""Generate what the store lacks, one adapter at a time on one loaded base, committing as it goes."""

from __future__ import annotations

import time
from dataclasses import asdict

from core.progress import progress_bar
from harness.engines import Decoding, Request
from harness.run.engine import LazyEngine
from harness.run.plan import Item
from harness.store import Store


def generate_missing(
    store: Store,
    plan: list[Item],
    engine: LazyEngine,
    adapters: dict,
    decoding: Decoding,
    *,
    batch_size: int,
    timings: dict,
) -> int:
    """Generate every item whose key the store lacks; returns how many were generated. A killed run
    keeps every chunk it committed and generates only the rest next time."""
    t0 = time.time()
    cached = store.generations(p.key for p in plan)
    missing: dict[str, Item] = {}
    for p in plan:
        if p.key not in cached:
            missing.setdefault(p.key, p)  # variants sharing a prompt and a model generate it once
    if missing:
        paths = {a.identity: a.path for seeded in adapters.values() for a in seeded}
        groups: dict[str | None, list[Item]] = {}
        for p in missing.values():
            groups.setdefault(p.adapter, []).append(p)
        step = 4 * batch_size  # commit often: a killed run keeps what it finished
        with progress_bar("generating", len(missing)) as advance:
            for identity, items in groups.items():
                name = None if identity is None else engine.with_adapter(identity, paths[identity])
                for i in range(0, len(items), step):
                    chunk = items[i : i + step]
                    done = engine.get().generate(
                        [Request(p.prompt, adapter=name, decoding=decoding) for p in chunk], progress=advance
                    )
                    store.put_generations(
                        (p.key, asdict(c) | {"answer": c.text}) for p, c in zip(chunk, done)
                    )
    timings["generate_s"] = round(time.time() - t0, 2)
    return len(missing)
