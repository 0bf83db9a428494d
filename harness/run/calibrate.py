"""`ragvft calibrate`: measure how far a retrained adapter moves its variant's scores, and propose
gate margins from that noise, so that a margin is measured, not guessed.

It runs the bench with every adapter trained once per seed (no judge, no forgetting check, no gate:
only what the margins need), then, for each gate rule (or each adapter variant's first metric), pairs
the seeds with each other as the gate would pair a rerun with its blessed run. The proposed margin is
the smallest that every pair of seeds passes, in both directions, rounded up to 0.01. Variants without
a trained adapter do not move with the seed: their current margin is kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
from itertools import permutations
from pathlib import Path
from typing import Any

import yaml

from core.cache import replacing
from harness.config import BenchConfig
from harness.run.pipeline import bench
from judges import SCORERS
from reports.records import ResultRow, plain
from reports.rows import per_question
from reports.stats import clean, paired_delta


def calibrate(config: BenchConfig, seeds: list[int]) -> tuple[Path, list[dict[str, Any]]]:
    training = config.training.model_copy(update={"seeds": seeds})
    seeded = config.model_copy(update={"training": training, "judge": None, "forgetting": None, "gate": None})
    seeded._source = config.source
    result = bench(seeded)
    rules: list[dict[str, Any]] = [r.model_dump() for r in config.gate.rules] if config.gate else []
    if not rules:
        metric = config.metrics[0]
        rules = [
            {"variant": v.name, "metric": metric, "margin": None, "floor": None}
            for v in config.variants
            if v.has_adapter
        ]
    proposals = [_propose(result.rows, rule, config) for rule in rules]
    out = Path(result.run_dir)
    _write_files(
        out,
        {
            "calibration.json": json.dumps({"seeds": seeds, "rules": proposals}, indent=2),
            "margins.yaml": _margins_yaml(proposals, seeds),
        },
    )
    return out, proposals


def _write_files(folder: Path, files: dict[str, str]) -> None:
    """Each of `files` ({name: text}) written to a temporary file in `folder`, then all renamed into
    place; on a failure none is, and no temporary file is left (`core.cache.replacing`)."""
    with contextlib.ExitStack() as stack:
        for name, text in files.items():
            stack.enter_context(replacing(folder / name)).write_text(text, encoding="utf-8")


def _margins_yaml(proposals: list[dict[str, Any]], seeds: list[int]) -> str:
    """margins.yaml: the proposed margins as a config's `gate.rules`, to paste."""
    snippet = {
        "gate": {
            "rules": [
                {
                    k: v
                    for k, v in {
                        "variant": p["variant"],
                        "metric": p["metric"],
                        "margin": p["proposed_margin"],
                        "floor": p["floor"],
                    }.items()
                    if v is not None
                }
                for p in proposals
            ]
        }
    }
    return (
        f"# Proposed by `ragvft calibrate` from {len(seeds)} training seeds {seeds}: the smallest margin every\n"
        "# pair of seeds passes. Paste under your config's `gate:` (keep `blessed:`).\n"
        + yaml.safe_dump(snippet, sort_keys=False)
    )


def _propose(rows: list[ResultRow], rule: dict[str, Any], config: BenchConfig) -> dict[str, Any]:
    v, m = rule["variant"], rule["metric"]
    mine = [r for r in rows if r["variant"] == v and m in r["scores"]]
    seeds = sorted({r.get("seed") for r in mine}, key=str)
    base = {"variant": v, "metric": m, "current_margin": rule.get("margin"), "floor": rule.get("floor")}
    if seeds == [None] or not mine:
        return base | {
            "seeds": 0,
            "proposed_margin": rule.get("margin"),
            "note": "no trained adapter: does not move with the seed",
        }
    by_seed = {s: per_question(plain([r for r in mine if r.get("seed") == s]), m) for s in seeds}
    determined_ = {s: clean(list(vals.values())) for s, vals in by_seed.items()}  # never 0 for undetermined
    means = {s: float(x.mean()) if x.size else None for s, x in determined_.items()}
    worst, pairs = 0.0, []
    kind = SCORERS[m].kind if m in SCORERS else None
    for a, b in permutations(seeds, 2):
        d = paired_delta(
            by_seed[a], by_seed[b], kind=kind, samples=config.bootstrap_samples, seed=config.seed
        )
        if d is None:  # no question with a value on both sides
            continue
        pairs.append({"run": a, "blessed": b, "delta": d["mean"], "ci95": d["ci95"]})
        worst = max(worst, -d["ci95"][0])
    spread = [x for x in means.values() if x is not None]
    sd = statistics.stdev(spread) if len(spread) > 1 else 0.0
    return base | {
        "seeds": len(seeds),
        "seed_means": means,
        "seed_sd": sd,
        "pairs": pairs,
        "worst_lower_bound": -worst,
        "proposed_margin": math.ceil(worst * 100 - 1e-9) / 100,  # up to the next hundredth, not past it
    }
