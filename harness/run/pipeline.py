"""`ragvft bench`: suite -> artifacts -> plan -> generate -> score -> judge -> report -> gate, writing
`runs/<run-id>/`. Generations and scores go through the results store, so an unchanged rerun
generates nothing; the run folder is written whole or not at all (harness.run.write)."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.cache import cache_root, library_versions
from core.device import peak_memory_mib
from core.errors import InputError
from harness.artifacts import load_suite, primary, resolve_adapters, resolve_model, resolve_retrievers
from harness.artifacts.model import shipped_judge_for
from harness.config import BenchConfig
from harness.engines import Decoding
from harness.run.engine import LazyEngine
from harness.run.forgetting import forgetting_check, shares_engine
from harness.run.generate import adapter_labels, generate_missing
from harness.run.plan import make_plan
from harness.run.rows import adapter_checks, make_row
from harness.run.score import score
from harness.run.write import git_state, hardware, write_run
from harness.store import Store
from judges import SCORERS
from reports import gate
from reports.aggregate import summarize
from reports.attribution import knowledge_attribution
from reports.decision import decide
from reports.metric_gap import metric_gap
from suites.leakage import find_leaks


@dataclass
class RunResult:
    run_dir: Path
    summary: dict
    rows: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def bench(config: BenchConfig) -> RunResult:
    started = time.time()
    timings: dict[str, float] = {}
    memory = {"start": peak_memory_mib()}  # the process's peak resident memory after each phase, MiB
    suite = load_suite(config)
    base = resolve_model(config, timings)
    memory["model"] = peak_memory_mib()
    adapters, trained = resolve_adapters(config, suite, base, timings)
    memory["adapters"] = peak_memory_mib()
    retrievers, retriever_info = resolve_retrievers(config, suite, timings)
    engine = LazyEngine.for_base(config, base)
    judge_adapter = None
    if (  # a LoRA judge on the shared engine: check it too (a shipped judge is a model of its own)
        config.judge is not None
        and config.judge.builtin is not None
        and shipped_judge_for(config, base) is None
    ):
        from harness.artifacts import judge_adapter as builtin_judge_adapter

        judge_adapter = builtin_judge_adapter(config, suite, base, timings)
    labels = adapter_labels(adapters)
    ready = {a.identity: a for seeded in adapters.values() for a in seeded}
    engine.preflight(  # every LoRA adapter and soft prompt (a full fine-tune is a model of its own)
        [(labels[i], a.path) for i, a in ready.items() if a.kind != "full"]
        + ([("judge", judge_adapter.path)] if judge_adapter else [])
    )
    decoding = Decoding(max_new_tokens=config.generation.max_new_tokens)
    plan = make_plan(config, suite, base, adapters, retrievers, engine=engine.identity, decoding=decoding)
    passages = suite.passage_map()
    leaks = find_leaks(suite.questions, suite.training, threshold=config.leakage.threshold)
    store = Store(cache_root() / "results.sqlite")
    judge_info, judge_manifest, forgetting = {}, None, {}
    try:
        memory["retrievers"] = peak_memory_mib()
        missing = generate_missing(store, plan, engine, adapters, decoding, timings=timings)
        memory["generate"] = peak_memory_mib()
        generations = store.generations(p.key for p in plan)
        t0 = time.time()
        scores, scored = score(store, plan, generations, config.metrics, passages)
        timings["score_s"] = round(time.time() - t0, 2)
        rows = [
            make_row(p, generations[p.key], scores, passages, config.metrics)
            | {"leaked": p.question.id in leaks}
            for p in plan
        ]
        if config.judge is not None:
            from harness.run.judge_backend import make_judge
            from harness.run.judging import run_judge

            judge = make_judge(config, suite, base, store, engine, timings, adapter=judge_adapter)
            encoder = retrievers[config.judge.embedder].encoder if config.judge.embedder else None
            judge_info = run_judge(config, rows, judge, passages=passages, encoder=encoder, timings=timings)
            judge_manifest = judge.info
            memory["judge"] = peak_memory_mib()
        if config.forgetting is not None and shares_engine(config):  # on the run's loaded base, still open
            forgetting = forgetting_check(config, base, primary(adapters), timings, engine)
    finally:
        store.close()
        engine_info = engine.info()
        engine.close()
        _release_memory()

    if config.forgetting is not None and not shares_engine(config):  # an HF engine of its own, after it
        forgetting = forgetting_check(config, base, primary(adapters), timings)
    if config.forgetting is not None:
        memory["forgetting"] = peak_memory_mib()
    compared = [r for r in rows if not r["leaked"]] if config.leakage.exclude else rows
    metrics = config.all_metrics()
    summary = summarize(compared, config, suite_name=suite.name, metrics=metrics)
    summary["metric_info"] = {m: SCORERS[m].info() for m in metrics}
    summary["judge_reliability"] = judge_info
    summary["forgetting"] = forgetting
    summary["leakage"] = {
        "threshold": config.leakage.threshold,
        "leaked": len(leaks),
        "excluded": bool(config.leakage.exclude and leaks),
        "questions": leaks,
    }
    # leaked questions, when excluded, are out of every comparison: the summary, the checks, the gate
    summary["adapter_checks"] = adapter_checks(compared, config)
    summary["attribution"] = knowledge_attribution(compared, config)
    summary["metric_gap"] = metric_gap(compared, metrics)
    summary["decision"] = decide(compared, config, training_s=training_seconds(adapters))
    summary["gate"] = _gate(config, compared, summary["metric_info"], suite.corpus_digest())
    summary["power"] = {r["rule"]: r["power"] for r in summary["gate"].get("rules", []) if r.get("power")}
    timings["total_s"] = round(time.time() - started, 2)
    manifest = {
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
        "engine": engine_info,
        "judge": judge_manifest,
        "forgetting": {k: forgetting[k] for k in ("engine", "runs")} if forgetting else None,
        "retrievers": retriever_info,
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
        "cache": {
            "generations_cached": len(plan) - missing,
            "generations_computed": missing,
            "scores_computed": scored,
            "scores_cached": len(plan) * len(config.metrics) - scored,
            "base_model": base.info["status"],
            "adapters_trained": trained,
            "adapters_cached": sorted({a.name for a in primary(adapters).values() if a.status == "cached"}),
            "adapters_shipped": sorted({a.name for a in primary(adapters).values() if a.status == "shipped"}),
        },
    }
    run_dir = write_run(Path(config.runs_dir), rows, summary, manifest)
    return RunResult(run_dir, summary, rows, manifest)


def training_seconds(adapters: dict[str, list]) -> dict[str, float | None]:
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


def _gate(config: BenchConfig, rows: list[dict], metric_info: dict, corpus_digest: str) -> dict:
    if config.gate is None:
        return {"status": "not configured"}
    try:
        baseline = gate.load_baseline(config.gate.baseline)
    except gate.GateError as e:
        raise InputError(config.source, str(e), field="gate.baseline") from None
    rules = [r.model_dump() for r in config.gate.rules]
    try:
        result = gate.check(
            rows,
            baseline,
            rules,
            samples=config.bootstrap_samples,
            seed=config.seed,
            metric_info=metric_info,
            corpus_digest=corpus_digest,
        )
    except gate.GateError as e:  # a hand-edited or broken baseline
        raise InputError(config.source, f"{config.gate.baseline}: {e}", field="gate.baseline") from None
    return result | {"baseline": config.gate.baseline}
