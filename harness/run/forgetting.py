"""The forgetting check: did fine-tuning break what the base model could do outside the domain?

lm-eval tasks named in the config run on the base model and on every adapter the bench uses, through
lm-eval itself (`harness.lmeval.run_lmeval`). A task is a folder of lm-eval YAML (local tasks work
offline), or `builtin_reading`: reading comprehension on the built-in base model's own pool of facts
about other organisations, with answers drawn afresh so that they can only be read, not remembered.

Each (model, adapter, task) result is cached under a key of what determines it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from core.cache import cache_root, digest, folder_hash
from core.errors import InputError
from harness.config import BUILTIN_READING

_PROBE_DRAW = 10**6  # a draw of answers the base model never trained on


def builtin_reading_task(
    base_spec, out_dir: Path, *, questions: int, max_new_tokens: int
) -> tuple[Path, str]:
    """Export the built-in reading probe as an lm-eval task; returns (folder, task name)."""
    from harness.lmeval import export_task
    from suites.builtin import reading_pool
    from suites.schema import Passage, Question, Suite

    facts = reading_pool(
        base_spec.seed, scale=base_spec.pool_scale, domain_scale=base_spec.domain_scale, draw=_PROBE_DRAW
    )
    step = max(1, len(facts) // questions)
    chosen = facts[::step][:questions]
    suite = Suite(
        name=BUILTIN_READING,
        passages=tuple(Passage(f.id, f.passage) for f in chosen),
        questions=tuple(
            Question(f.id, f.wordings[1 + n % 2], f.answers, (f.id,), f.category)
            for n, f in enumerate(chosen)
        ),
    )
    retrieved = {f.id: [f.passage] for f in chosen}
    export_task(suite, out_dir, name=BUILTIN_READING, max_new_tokens=max_new_tokens, retrieved=retrieved)
    return out_dir, BUILTIN_READING


def forgetting_check(config, base, adapters: dict, timings: dict) -> dict:
    """{"tasks": {task: {"base": em, variant: em, ...}}, "deltas": {task: {variant: em - base}}, ...}.

    One run per distinct adapter (variants that share an adapter share its result)."""
    f, base_spec = config.forgetting, base.spec  # the spec: None unless the base model is built-in
    t0 = time.time()
    tasks: list[tuple[Path, str]] = []
    for i, t in enumerate(f.tasks):
        if t == BUILTIN_READING:
            if base_spec is None:
                raise InputError(
                    config.source,
                    f"{BUILTIN_READING} probes the built-in base model; with `model.path` name an lm-eval "
                    "task folder instead",
                    field=f"forgetting.tasks.{i}",
                )
            folder = cache_root() / "probes" / f"reading-{base_spec.key()}-{f.limit}"
            if not (folder / f"{BUILTIN_READING}.yaml").is_file():  # the YAML is written last
                # written in place, not renamed: the YAML holds the data file's absolute path
                builtin_reading_task(
                    base_spec, folder, questions=f.limit, max_new_tokens=config.generation.max_new_tokens
                )
            tasks.append((folder, BUILTIN_READING))
        else:
            folder = Path(t)
            yamls = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
            if not yamls:
                raise InputError(
                    config.source,
                    f"{t!r} is not a folder of lm-eval task YAML",
                    field=f"forgetting.tasks.{i}",
                )
            tasks.append((folder, _task_name(yamls[0])))
    models: dict[str, tuple[str | None, str | None]] = {"base": (None, None)}
    seen: dict[str, str] = {}
    for v, a in adapters.items():
        if a.identity not in seen:
            seen[a.identity] = v
            models[v] = (str(a.path), a.identity)
    results: dict[str, dict] = {}
    runs = {"computed": 0, "cached": 0}
    for folder, task in tasks:
        per = results.setdefault(task, {})
        for name, (path, identity) in models.items():
            per[name] = _cached_run(folder, task, base, path, identity, f.limit, runs)
        for v, a in adapters.items():  # variants sharing an adapter share its figure
            per.setdefault(v, per[seen[a.identity]])
    timings["forgetting_s"] = round(time.time() - t0, 2)
    deltas = {
        task: {
            v: None if r["base"] is None or x is None else x - r["base"] for v, x in r.items() if v != "base"
        }
        for task, r in results.items()
    }
    return {"tasks": results, "deltas": deltas, "limit": f.limit, "runs": runs}


def _task_name(yaml_path: Path) -> str:
    for line in yaml_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("task:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    return yaml_path.stem


def _cached_run(folder: Path, task: str, base, adapter: str | None, identity, limit: int, runs: dict):
    from harness.lmeval import run_lmeval

    key = digest({"base": base.identity, "adapter": identity, "task": folder_hash(folder), "limit": limit})
    path = cache_root() / "forgetting" / f"{task}-{key}.json"
    if path.is_file():
        runs["cached"] += 1
        return json.loads(path.read_text())["exact_match"]
    out = run_lmeval(folder, task, base=base.path, adapter=adapter, limit=limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"exact_match": out["exact_match"], "n": out["n"]}))
    tmp.replace(path)
    runs["computed"] += 1
    return out["exact_match"]
