"""The forgetting check: did fine-tuning break what the base model could do outside the domain?

lm-eval tasks named in the config run on the base model and on every adapter the bench uses, through
lm-eval itself (`harness.lmeval.run_lmeval`), on one load of the base: the run's own HF engine when the
run generates in process with `hf` (the check then runs before that engine closes, its adapters
switched on the one model), else an HF engine of its own, loaded once for every adapter after the
run's engine (vLLM, a server, Ray actors) has closed. A full fine-tune runs on its own weights and a
soft prompt (prompt or prefix tuning) alone on a load of the base of its own, after the others: PEFT
holds a soft prompt beside no LoRA adapter (see `harness.run.generate`).

A task is `builtin_reading`: reading comprehension on the built-in base model's own pool of facts
about other organisations, with answers drawn afresh so that they can only be read, not remembered;
or a folder of lm-eval YAML (local tasks work offline), whose every task runs: each YAML with a
`task:`, subfolders included, as lm-eval indexes the folder. A `group:` YAML is not run as a group (the tasks it lists run one by one when they are in
the folder; its aggregate, a mean of theirs, is not computed) and a YAML with neither, a template
others include, is no task.

Every metric a task reports is kept (accuracy, normalised accuracy, exact match...); the figure shown
is the task's primary one, the first lm-eval reports. Each (model, adapter, task) result is cached
under a key of what determines it; when all are cached nothing loads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from core.cache import cache_root, digest, folder_hash
from core.errors import InputError
from harness.builtin.basemodel import BaseModelSpec
from harness.config import BUILTIN_READING
from harness.run.engine import LazyEngine
from harness.training import Adapter

if TYPE_CHECKING:
    from harness.artifacts import BaseModel
    from harness.config import BenchConfig
    from harness.engines.hf import HFEngine

Todo = dict[str, dict[Path, list[tuple[str, Path]]]]  # model -> task folder -> [(task, its cache file)]
Entries = dict[str, dict[str, dict[str, Any]]]  # task -> model -> its cached result

_PROBE_DRAW = 10**6  # a draw of answers the base model never trained on


def builtin_reading_task(
    base_spec: BaseModelSpec, out_dir: Path, *, questions: int, max_new_tokens: int
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


def shares_engine(config: BenchConfig) -> bool:
    """Whether the check runs on the run's own engine: only an in-process HF one holds a model that
    lm-eval can evaluate (vLLM's is in another process, a server's elsewhere, Ray's in actors)."""
    return config.generation.engine == "hf" and config.generation.ray is None


def forgetting_check(
    config: BenchConfig,
    base: BaseModel,
    adapters: dict[str, Adapter],
    timings: dict[str, float],
    engine: LazyEngine | None = None,
) -> dict[str, Any]:
    """{"tasks": {task: {"base": x, variant: x}}, "deltas": {task: {variant: x - base}}, "metric": {task:
    primary metric}, "metrics": {task: {model: {metric: x}}}, "metric_deltas": {task: {variant: {metric:
    delta}}}, ...}: x the primary metric, the shape the report has always read, every metric beside it.

    `engine` is the run's, still open, when `shares_engine`; else the check loads its own. One run per
    distinct adapter (variants that share an adapter share its result)."""
    f = config.forgetting
    if f is None:
        raise ValueError("the config has no forgetting check")
    t0 = time.time()
    models: dict[str, Adapter | None] = {"base": None}  # the first variant of each distinct adapter
    source: dict[str, str] = {"base": "base"}  # source: each variant -> the model whose results it shares
    first: dict[str, str] = {}  # adapter identity -> the first variant with it
    for v, a in adapters.items():
        source[v] = first.setdefault(a.identity, v)
        models.setdefault(source[v], a)
    entries, todo, runs = _look_up(config, base, models, f.limit)
    on = "none (every result cached)"  # what the check ran on, for the manifest
    if todo:
        shared = engine is not None and shares_engine(config)
        _compute(config, base, models, todo, entries, engine if shared else None)
        runs["computed"] = sum(len(p) for folders in todo.values() for p in folders.values())
        g = config.generation
        theirs = g.engine + (" in Ray actors" if g.ray is not None else "")
        on = "the run's hf engine" if shared else f"an hf engine of its own (the run's: {theirs})"
    timings["forgetting_s"] = round(time.time() - t0, 2)
    return _shaped(entries, source) | {"limit": f.limit, "runs": runs, "engine": on}


def _look_up(
    config: BenchConfig, base: BaseModel, models: dict[str, Adapter | None], limit: int
) -> tuple[Entries, Todo, dict[str, int]]:
    """Each (task, model)'s result from the cache, where it is; the rest to compute; and the counts."""
    entries: Entries = {}
    todo: Todo = {}
    runs = {"computed": 0, "cached": 0}
    for folder, names in _tasks(config, base):
        held = folder_hash(folder)
        for task in names:
            if task in entries:
                raise InputError(config.source, f"two folders hold a task {task!r}", field="forgetting.tasks")
            entries[task] = {}
            for m, a in models.items():
                what = {"base": base.identity, "adapter": a and a.identity, "folder": held, "limit": limit}
                key = digest(what | {"task": task, "v": 2})  # v2: every metric (v1 held exact match alone)
                path = cache_root() / "forgetting" / f"{task}-{key}.json"
                if path.is_file():
                    entries[task][m] = json.loads(path.read_text())
                    runs["cached"] += 1
                else:
                    todo.setdefault(m, {}).setdefault(folder, []).append((task, path))
    return entries, todo, runs


def _shaped(entries: Entries, source: dict[str, str]) -> dict[str, Any]:
    """The results by task, each variant's from the model it shares (`source`), against the base."""
    parts = ("tasks", "deltas", "metric", "higher_is_better", "metrics", "metric_deltas")
    out: dict[str, dict[str, Any]] = {k: {} for k in parts}
    for task, per in entries.items():
        primary, before = per["base"]["primary"], per["base"]["metrics"]
        metrics = {v: per[m]["metrics"] for v, m in source.items()}
        changes = {
            v: {k: x - before[k] for k, x in got.items() if k in before}
            for v, got in metrics.items()
            if v != "base"
        }
        out["metric"][task], out["higher_is_better"][task] = primary, per["base"]["higher_is_better"]
        out["metrics"][task], out["metric_deltas"][task] = metrics, changes
        out["tasks"][task] = {v: got.get(primary) for v, got in metrics.items()}
        out["deltas"][task] = {v: d.get(primary) for v, d in changes.items()}
    return out


def _tasks(config: BenchConfig, base: BaseModel) -> list[tuple[Path, list[str]]]:
    """Each configured task as (folder, the names of the tasks it holds)."""
    from lm_eval.tasks import TaskManager

    f, base_spec = config.forgetting, base.spec  # the spec: None unless the base model is built-in
    if f is None:
        raise ValueError("the config has no forgetting check")
    out = []
    for i, t in enumerate(f.tasks):
        if t == BUILTIN_READING:
            # reading from a passage, on facts about organisations no built-in suite names: the built-in
            # base model's own pool, or (another model) the shipped base's, a probe any model can take
            base_spec = base_spec or BaseModelSpec()
            folder = cache_root() / "probes" / f"reading-v2-{base_spec.key()}-{f.limit}"  # v2: with match
            if not (folder / f"{BUILTIN_READING}.yaml").is_file():  # the YAML is written last
                # written in place, not renamed: the YAML holds the data file's absolute path
                builtin_reading_task(
                    base_spec, folder, questions=f.limit, max_new_tokens=config.generation.max_new_tokens
                )
            out.append((folder, [BUILTIN_READING]))
            continue
        folder = Path(t)
        names = []
        if folder.is_dir():  # lm-eval's own index of the folder: every YAML with a `task:`
            names = TaskManager(include_path=str(folder), include_defaults=False).all_subtasks
        if not names:
            raise InputError(
                config.source, f"{t!r} is not a folder of lm-eval task YAML", field=f"forgetting.tasks.{i}"
            )
        out.append((folder, names))
    return out


def _compute(
    config: BenchConfig,
    base: BaseModel,
    models: dict[str, Adapter | None],
    todo: Todo,
    entries: Entries,
    engine: LazyEngine | None,
) -> None:
    """Run what the cache lacks on one loaded base: `engine`, the run's, or else an HF engine loaded here
    and closed after. Each model's tasks run with its adapter switched on (the base: all disabled)."""
    own = engine is None
    if engine is None:  # the run's engine, made `hf` in process: the base loads as the run says (dtype...)
        in_process = config.generation.model_copy(update={"engine": "hf", "ray": None})
        engine = LazyEngine.for_base(config.model_copy(update={"generation": in_process}), base)
    alone = {m: a for m, a in models.items() if a and a.alone and m in todo}
    try:
        lora = {m: a for m, a in models.items() if a and m in todo and m not in alone}
        names = {m: engine.with_adapter(a.identity, a.path, m) for m, a in lora.items()}
        shared = {m: folders for m, folders in todo.items() if m not in alone}
        if shared:
            _run_tasks(config, cast("HFEngine", engine.get()), shared, names, entries)
    finally:
        if own:
            engine.close()
    # A full fine-tune: its own weights; a soft prompt: alone on the base (PEFT holds it beside no
    # LoRA adapter). Each loaded for its tasks, then released.
    for m in sorted(alone):
        other, name = engine.alone(alone[m], m)
        try:
            _run_tasks(config, cast("HFEngine", other.get()), {m: todo[m]}, {m: name}, entries)
        finally:
            other.close()


def _run_tasks(
    config: BenchConfig, hf: HFEngine, todo: Todo, names: Mapping[str, str | None], entries: Entries
) -> None:
    """Each model's pending tasks on the loaded HF engine `hf`, its adapter switched on (the base and a
    full fine-tune's own weights: every adapter off); each result cached as it comes."""
    from harness.lmeval import hflm, run_lmeval

    # After the adapters (the first wraps the model). A soft prompt's virtual tokens take context; a
    # prompt tuning's batches are of one row, unpadded, as the engine's are of one length (PEFT drops
    # its position ids, so left padding would move the prompt away from it: see `HFEngine.add_adapter`)
    limit = config.forgetting.limit if config.forgetting else None
    room = hf.context if hf.virtual_tokens else None
    lm = hflm(hf.model, hf.tokenizer, batch_size=1 if hf.one_length else hf.batch_size, max_length=room)
    for m, folders in todo.items():
        with hf._using(names.get(m)):  # the engine's own switch: set_adapter, or every adapter off
            for folder, pending in folders.items():
                out = run_lmeval(folder, [task for task, _ in pending], lm, limit=limit)
                for task, path in pending:
                    entry = {k: out[task][k] for k in ("metrics", "primary", "higher_is_better", "n")}
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(entry))
                    tmp.replace(path)
                    entries[task][m] = entry
