"""`ragvft bench`: suite -> artifacts -> plan -> generate -> score -> judge -> report -> gate, writing
`runs/<run-id>/`. Generations and scores go through the results store, so an unchanged rerun
generates nothing; the run folder is written whole or not at all (harness.run.write)."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cache import cache_root, library_versions
from core.device import peak_memory_mib
from core.errors import InputError
from harness.artifacts import load_suite, primary, resolve_adapters, resolve_model, resolve_retrievers
from harness.config import BenchConfig
from harness.engines import Decoding
from harness.run.engine import LazyEngine
from harness.run.forgetting import forgetting_check, shares_engine
from harness.run.generate import adapter_labels, generate_missing
from harness.run.judge_backend import make_judge, prepare_judge
from harness.run.plan import Item, make_plan
from harness.run.rows import adapter_checks, make_row
from harness.run.score import score
from harness.run.write import check_runs_dir, git_state, hardware, write_run
from harness.store import RESULTS, Store, check_store
from judges import SCORERS
from reports import gate
from reports.aggregate import summarize
from reports.attribution import knowledge_attribution
from reports.decision import decide
from reports.metric_gap import metric_gap
from reports.records import GateResult, ResultRow, Summary, plain
from suites.leakage import find_leaks

if TYPE_CHECKING:
    from harness.artifacts import BaseModel
    from harness.training import Adapter
    from suites.schema import Suite


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]  # summary.json as written (a `reports.records.Summary`'s JSON form)
    rows: list[ResultRow] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ready:
    """Every artifact the run needs, built, trained or taken from the cache before anything generates."""

    suite: Suite
    base: BaseModel
    adapters: dict[str, list[Adapter]]  # variant -> its adapters, one per training seed
    trained: list[str]  # the methods trained by this run
    retrievers: dict[str, Any]
    retriever_info: dict[str, Any]
    judge_adapter: Adapter | None  # the built-in LoRA judge's (`prepare_judge`)


@dataclass
class Done:
    """What the stages on the run's engine made: the rows, and what the summary and manifest say."""

    rows: list[ResultRow]
    generated: int
    scored: int
    judge_reliability: dict[str, Any]
    judge_manifest: dict[str, Any] | None
    forgetting: dict[str, Any]
    engine_info: dict[str, Any]


def bench(config: BenchConfig) -> RunResult:
    check_outputs(config)
    started = time.time()
    timings: dict[str, float] = {}
    memory = {"start": peak_memory_mib()}  # the process's peak resident memory after each phase, MiB
    ready = _resolve(config, timings, memory)
    engine = LazyEngine.for_base(config, ready.base)
    _preflight(engine, ready)
    decoding = Decoding(max_new_tokens=config.generation.max_new_tokens)
    plan = make_plan(
        config, ready.suite, ready.base, ready.adapters, ready.retrievers, engine=engine.identity, decoding=decoding
    )
    leaks = find_leaks(ready.suite.questions, ready.suite.training, threshold=config.leakage.threshold)
    done = _on_engine(config, ready, plan, engine, decoding, leaks, timings, memory)
    summary = _summarize(config, ready, done, leaks).model_dump()
    timings["total_s"] = round(time.time() - started, 2)
    manifest = run_manifest(config, ready, done, len(plan), timings, memory)
    run_dir = write_run(Path(config.runs_dir), plain(done.rows), summary, manifest)
    return RunResult(run_dir, summary, done.rows, manifest)


def check_outputs(config: BenchConfig) -> None:
    """Every place the run writes, checked before any work starts (a problem found after hours of
    training would lose them): the runs folder and its `latest` (`check_runs_dir`), the cache folder
    (`cache_root`) and its results store (`check_store`)."""
    check_runs_dir(Path(config.runs_dir), config.source)
    check_store(cache_root() / RESULTS)


def _resolve(config: BenchConfig, timings: dict[str, float], memory: dict[str, float]) -> Ready:
    suite = load_suite(config)
    base = resolve_model(config, timings)
    memory["model"] = peak_memory_mib()
    adapters, trained = resolve_adapters(config, suite, base, timings)
    memory["adapters"] = peak_memory_mib()
    retrievers, retriever_info = resolve_retrievers(config, suite, timings)
    judge_adapter = prepare_judge(config, suite, base, timings)
    return Ready(suite, base, adapters, trained, retrievers, retriever_info, judge_adapter)


def _preflight(engine: LazyEngine, ready: Ready) -> None:
    """Every LoRA adapter and soft prompt, the LoRA judge's included, checked before anything loads (a
    full fine-tune is a model of its own)."""
    labels = adapter_labels(ready.adapters)
    adapters = {a.identity: a for seeded in ready.adapters.values() for a in seeded}
    engine.preflight(
        [(labels[i], a.path) for i, a in adapters.items() if a.kind != "full"]
        + ([("judge", ready.judge_adapter.path)] if ready.judge_adapter else [])
    )


class _Held:
    """The run's results store and engine, let go of once (`close`): what the manifest says of the
    engine kept, the engine's memory freed before what loads next."""

    def __init__(self, store: Store, engine: LazyEngine) -> None:
        self.store, self.engine = store, engine
        self.engine_info: dict[str, Any] = {}
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.store.close()
        self.engine_info = self.engine.info()
        self.engine.close()
        _release_memory()


def _on_engine(
    config: BenchConfig,
    ready: Ready,
    plan: list[Item],
    engine: LazyEngine,
    decoding: Decoding,
    leaks: dict[str, dict[str, Any]],
    timings: dict[str, float],
    memory: dict[str, float],
) -> Done:
    """Generate, score and judge on the run's engine, then the forgetting check: on that engine, still
    open, when it can share it (`shares_engine`), else once the engine has let go of its memory."""
    held = _Held(Store(cache_root() / RESULTS), engine)
    try:
        memory["retrievers"] = peak_memory_mib()
        generated = generate_missing(held.store, plan, engine, ready.adapters, decoding, timings=timings)
        memory["generate"] = peak_memory_mib()
        rows, scored = _score(config, held.store, plan, ready.suite, leaks, timings)
        judge_reliability, judge_manifest = _judge(config, ready, rows, held.store, engine, timings, memory)
        if not shares_engine(config):  # vLLM, a server, Ray actors: gone before an HF engine of its own
            held.close()
        forgetting = _forgetting(config, ready, timings, engine)
    finally:
        held.close()
    if config.forgetting is not None:
        memory["forgetting"] = peak_memory_mib()
    return Done(rows, generated, scored, judge_reliability, judge_manifest, forgetting, held.engine_info)


def _score(
    config: BenchConfig,
    store: Store,
    plan: list[Item],
    suite: Suite,
    leaks: dict[str, dict[str, Any]],
    timings: dict[str, float],
) -> tuple[list[ResultRow], int]:
    """Every answer scored (the missing scores computed), as result rows; and how many were computed."""
    passages = suite.passage_map()
    generations = store.generations(p.key for p in plan)
    t0 = time.time()
    scores, scored = score(store, plan, generations, config.metrics, passages)
    timings["score_s"] = round(time.time() - t0, 2)
    rows = [
        make_row(p, generations[p.key], scores, passages, config.metrics, leaked=p.question.id in leaks)
        for p in plan
    ]
    return rows, scored


def _judge(
    config: BenchConfig,
    ready: Ready,
    rows: list[ResultRow],
    store: Store,
    engine: LazyEngine,
    timings: dict[str, float],
    memory: dict[str, float],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The judge's scores added to the rows; its reliability (summary) and what the manifest says of it."""
    if config.judge is None:
        return {}, None
    from harness.run.judging import run_judge

    judge = make_judge(config, ready.suite, ready.base, store, engine, timings, adapter=ready.judge_adapter)
    encoder = ready.retrievers[config.judge.embedder].encoder if config.judge.embedder else None
    passages = ready.suite.passage_map()
    reliability = run_judge(config, rows, judge, passages=passages, encoder=encoder, timings=timings)
    memory["judge"] = peak_memory_mib()
    return reliability, judge.info


def _forgetting(config: BenchConfig, ready: Ready, timings: dict[str, float], engine: LazyEngine) -> dict[str, Any]:
    """The forgetting check, when configured; on `engine` only where it `shares_engine`."""
    if config.forgetting is None:
        return {}
    return forgetting_check(config, ready.base, primary(ready.adapters), timings, engine)


def _summarize(config: BenchConfig, ready: Ready, done: Done, leaks: dict[str, dict[str, Any]]) -> Summary:
    """The summary, of the rows compared: with `leakage.exclude`, the leaked questions are out of every
    comparison (the summary, the checks, the gate)."""
    rows = done.rows
    compared = [r for r in rows if not r.get("leaked")] if config.leakage.exclude else rows
    metrics = config.all_metrics()
    suite = ready.suite
    summary = Summary.model_validate(summarize(plain(compared), config, suite_name=suite.name, metrics=metrics))
    summary.metric_info = {m: SCORERS[m].info() for m in metrics}
    summary.judge_reliability = done.judge_reliability
    summary.forgetting = done.forgetting
    summary.leakage = {
        "threshold": config.leakage.threshold,
        "leaked": len(leaks),
        "excluded": bool(config.leakage.exclude and leaks),
        "questions": leaks,
    }
    summary.adapter_checks = adapter_checks(compared, config)
    summary.attribution = knowledge_attribution(plain(compared), config)
    summary.metric_gap = metric_gap(plain(compared), metrics)
    summary.decision = decide(plain(compared), config, training_s=training_seconds(ready.adapters))
    result = _gate(config, compared, summary.metric_info, suite.corpus_digest())
    summary.gate = result.dump()
    summary.power = {r["rule"]: r["power"] for r in result.rules if r.get("power")}
    return summary


def _gate(
    config: BenchConfig, rows: list[ResultRow], metric_info: dict[str, dict[str, Any]], corpus_digest: str
) -> GateResult:
    if config.gate is None:
        return GateResult(status="not configured")
    try:
        result = gate.check_run(
            rows,
            Path(config.gate.blessed),
            [r.model_dump() for r in config.gate.rules],
            samples=config.bootstrap_samples,
            seed=config.seed,
            metric_info=metric_info,
            corpus_digest=corpus_digest,
        )
    except gate.GateError as e:  # no baseline, an unreadable one, or a hand-edited or broken file
        raise InputError(config.source, str(e), field="gate.baseline") from None
    return result.model_copy(update={"baseline": config.gate.blessed})


def run_manifest(
    config: BenchConfig,
    ready: Ready,
    done: Done,
    items: int,
    timings: dict[str, float],
    memory: dict[str, float],
) -> dict[str, Any]:
    """`manifest.json`: what the run was (config, suite, model, engine, judge, adapters, seeds), where
    and how it ran (git, versions, hardware, timings, memory), and what it took from the caches."""
    suite, base, adapters = ready.suite, ready.base, ready.adapters
    forgetting = done.forgetting
    return {
        "run_name": config.name,
        "config_file": str(Path(config.source).resolve()),
        "config": config.manifest_dump(),
        "suite": {
            "name": suite.name,
            "digest": suite.digest(),
            "corpus_digest": suite.corpus_digest(),
            "passages": len(suite.passages),
            "questions": len(suite.questions),
        },
        "model": base.info,
        "engine": done.engine_info,
        "judge": done.judge_manifest,
        "forgetting": {k: forgetting[k] for k in ("engine", "runs")} if forgetting else None,
        "retrievers": ready.retriever_info,
        "adapters": {
            v: a[0].manifest() | ({"by_seed": {str(x.seed): x.manifest() for x in a}} if len(a) > 1 else {})
            for v, a in adapters.items()
        },
        "seeds": {
            "run": config.seed,
            "suite": config.suite.builtin.seed if config.suite.builtin else None,
            "training": config.training_seeds(),
        },
        "git": git_state(Path(config.source).resolve().parent),
        "versions": {"python": platform.python_version(), **library_versions()},
        "hardware": hardware(),
        "timings": timings,
        "memory_peak_mib": memory,
        "cache": _cache_record(config, ready, done, items),
    }


def _cache_record(config: BenchConfig, ready: Ready, done: Done, items: int) -> dict[str, Any]:
    """What the run computed and what it took from the caches (the manifest's `cache`)."""
    first = primary(ready.adapters).values()
    return {
        "generations_cached": items - done.generated,
        "generations_computed": done.generated,
        "scores_computed": done.scored,
        "scores_cached": items * len(config.metrics) - done.scored,
        "base_model": ready.base.info["status"],
        "adapters_trained": ready.trained,
        "adapters_cached": sorted({a.name for a in first if a.status == "cached"}),
        "adapters_shipped": sorted({a.name for a in first if a.status == "shipped"}),
    }


def training_seconds(adapters: dict[str, list[Adapter]]) -> dict[str, float | None]:
    """Each variant's training wall time (its first seed's adapter, plus the adapter it started from,
    as DPO from SFT, when that one is in the run too); None for a variant that trained nothing."""
    records = {a.record["key"]: a.record for seeded in adapters.values() for a in seeded if a.record}
    out: dict[str, float | None] = {}
    for variant, seeded in adapters.items():
        record, total = seeded[0].record, 0.0
        while record and record.get("wall_time_s") is not None:
            total += record["wall_time_s"]
            record = records.get(record.get("init"))
        out[variant] = round(total, 1) if seeded[0].record else None
    return out


def _release_memory() -> None:
    """What the closed engine held, freed before what comes next loads (the forgetting check's own
    HF engine) rather than when Python next collects; the CUDA cache too, when torch is in use."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # never imported for it: a run on a server has no torch to free
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
