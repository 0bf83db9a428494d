"""`ragvft bench`: suite -> model -> generate -> score -> report, writing `runs/<run-id>/`.

The run folder is assembled under a temporary name and renamed into place, then `runs/latest` is
pointed at it: a failed or killed run leaves no half-written run behind. Generations go through
the results store, so an unchanged rerun generates nothing.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import prompts
from harness.backend import HFBackend
from harness.cache import cache_root, digest, library_versions
from harness.config import BenchConfig
from harness.errors import InputError
from harness.progress import progress_bar
from harness.resolve import load_suite, resolve_adapters, resolve_model, resolve_retrievers
from harness.store import Store
from judges import exact_match, label_accuracy, token_f1
from reports import gate
from reports.aggregate import summarize
from reports.export import render_markdown, write_junit
from reports.html import write_html
from retrievers.metrics import question_metrics
from suites.leakage import find_leaks
from suites.schema import Question, Suite

SCORERS = {"em": exact_match, "f1": token_f1, "accuracy": label_accuracy, "macro_f1": label_accuracy}


@dataclass
class RunResult:
    run_dir: Path
    summary: dict
    rows: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def bench(config: BenchConfig, *, config_path: Path) -> RunResult:
    started = time.time()
    timings: dict[str, float] = {}
    suite = load_suite(config, config_path)
    base = resolve_model(config, timings)
    adapters, trained = resolve_adapters(config, config_path, suite, base, timings)
    retrievers, retriever_info = resolve_retrievers(config, config_path, suite, timings)
    plan = _plan(config, suite, base, adapters, retrievers)
    passages = suite.passage_map()
    leaks = find_leaks(suite.questions, suite.training, threshold=config.leakage.threshold)
    store = Store(cache_root() / "results.sqlite")
    judge_info, judge_manifest = {}, None
    try:
        missing = _generate_missing(config, store, plan, base, adapters, timings)
        generations = store.generations(p.key for p in plan)
        t0 = time.time()
        scores, scored = _score(store, plan, generations, config.metrics)
        timings["score_s"] = round(time.time() - t0, 2)
        rows = [
            _row(p, generations[p.key], scores, passages, config.metrics) | {"leaked": p.question.id in leaks}
            for p in plan
        ]
        if config.judge is not None:
            judge_info, judge_manifest = _judge(
                config, config_path, suite, base, store, rows, passages, retrievers, timings
            )
    finally:
        store.close()

    forgetting = {}
    if config.forgetting is not None:
        from harness.forgetting import forgetting_check

        forgetting = forgetting_check(config, config_path, base, adapters, timings)
    compared = [r for r in rows if not r["leaked"]] if config.leakage.exclude else rows
    summary = summarize(compared, config, suite_name=suite.name, metrics=config.all_metrics())
    summary["judge_reliability"] = judge_info
    summary["forgetting"] = forgetting
    summary["leakage"] = {
        "threshold": config.leakage.threshold,
        "leaked": len(leaks),
        "excluded": bool(config.leakage.exclude and leaks),
        "questions": leaks,
    }
    summary["adapter_checks"] = adapter_checks(rows, config)
    summary["gate"] = _gate(config, config_path, rows)
    timings["total_s"] = round(time.time() - started, 2)
    manifest = {
        "run_name": config.name,
        "config_file": str(config_path),
        "config": config.model_dump(),
        "suite": {
            "name": suite.name,
            "digest": suite.digest(),
            "passages": len(suite.passages),
            "questions": len(suite.questions),
        },
        "model": base.info,
        "judge": judge_manifest,
        "retrievers": retriever_info,
        "adapters": {
            v: {
                "source": a.status,
                "identity": a.identity,
                "path": str(a.path),
                "config": a.config,
                "training": a.record,
            }
            for v, a in adapters.items()
        },
        "seeds": {"run": config.seed, "suite": config.suite.builtin.seed if config.suite.builtin else None},
        "git": _git_state(config_path.parent),
        "versions": {"python": platform.python_version(), **library_versions()},
        "hardware": _hardware(),
        "timings": timings,
        "cache": {
            "generations_cached": len(plan) - missing,
            "generations_computed": missing,
            "scores_computed": scored,
            "scores_cached": len(plan) * len(config.metrics) - scored,
            "base_model": base.info["status"],
            "adapters_trained": sorted(set(trained)),
            "adapters_cached": sorted({a.name for a in adapters.values() if a.status == "cached"}),
        },
    }
    run_dir = _write_run(config, config_path, rows, summary, manifest)
    return RunResult(run_dir, summary, rows, manifest)


@dataclass(frozen=True)
class _Item:
    """One generation to look up or make: a variant's prompt for a question."""

    variant: str
    question: Question
    hits: list | None  # the top k, in the prompt
    ranked: list | None  # the top max(k, 10), for retrieval metrics
    prompt: str
    adapter: str | None  # the adapter's identity
    key: str


def _judge(config: BenchConfig, config_path: Path, suite, base, store, rows, passages, retrievers, timings):
    """The judge's scores added to `rows`; returns its reliability and what the manifest says of it."""
    from harness.judging import make_judge, run_judge

    judge = make_judge(config, config_path, suite, base, store, timings)
    encoder = retrievers[config.judge.embedder].encoder if config.judge.embedder else None
    info = run_judge(config, rows, judge, passages=passages, encoder=encoder, timings=timings)
    return info, judge.info


def _plan(config: BenchConfig, suite: Suite, base, adapters: dict, retrievers: dict) -> list[_Item]:
    passages = suite.passage_map()
    decoding = {"greedy": True, "max_new_tokens": config.generation.max_new_tokens}
    plan: list[_Item] = []
    searched: dict[tuple[str, int], list] = {}  # one search per retriever, as deep as any variant needs
    depth = {r: max([10] + [v.k for v in config.variants if v.retriever == r]) for r in retrievers}
    for v in config.variants:
        if v.retriever and v.retriever not in searched:
            searched[v.retriever] = retrievers[v.retriever].search(
                [q.text for q in suite.questions], depth[v.retriever]
            )
        ranked = searched[v.retriever] if v.retriever else [None] * len(suite.questions)
        adapter = adapters[v.name].identity if v.name in adapters else None
        for q, deep in zip(suite.questions, ranked):
            found = None if deep is None else deep[: v.k]  # the prompt reads the top k
            context = None if found is None else [passages[h.passage_id].text for h in found]
            prompt = prompts.build(q.text, context)
            key = digest(
                {"model": base.identity, "adapter": adapter, "prompt": prompt, "decoding": decoding}, 32
            )
            plan.append(_Item(v.name, q, found, deep, prompt, adapter, key))
    return plan


def _generate_missing(config: BenchConfig, store: Store, plan: list[_Item], base, adapters, timings) -> int:
    """Generate what the store lacks, one adapter at a time on one loaded base; returns how many."""
    t0 = time.time()
    cached = store.generations(p.key for p in plan)
    missing: dict[str, _Item] = {}
    for p in plan:
        if p.key not in cached:
            missing.setdefault(p.key, p)  # variants sharing a prompt and a model generate it once
    if missing:
        backend = HFBackend(
            base.path,
            revision=config.model.revision,
            trust_remote_code=config.model.trust_remote_code,
            batch_size=config.generation.batch_size,
            max_new_tokens=config.generation.max_new_tokens,
        )
        paths = {a.identity: a.path for a in adapters.values()}
        groups: dict[str | None, list[_Item]] = {}
        for p in missing.values():
            groups.setdefault(p.adapter, []).append(p)
        step = 4 * config.generation.batch_size  # commit often: a killed run keeps what it finished
        with progress_bar("generating", len(missing)) as advance:
            for identity, items in groups.items():
                name = None
                if identity is not None:
                    name = "a" + digest(identity, 8)  # PEFT adapter names must be plain identifiers
                    backend.add_adapter(name, paths[identity])
                for i in range(0, len(items), step):
                    chunk = items[i : i + step]
                    done = backend.generate([p.prompt for p in chunk], adapter=name, progress=advance)
                    store.put_generations(
                        (p.key, asdict(c) | {"answer": c.text}) for p, c in zip(chunk, done)
                    )
    timings["generate_s"] = round(time.time() - t0, 2)
    return len(missing)


SCORER_VERSION = "exact-v1"  # bump when a scorer's behaviour changes: it is part of score keys


def _score_key(p: _Item, metric: str) -> str:
    return digest(
        {"generation": p.key, "metric": metric, "scorer": SCORER_VERSION, "gold": p.question.answers}, 32
    )


def _score(store: Store, plan: list[_Item], generations: dict, metrics) -> tuple[dict, int]:
    """Every (row, metric) score from the store, computing and committing the missing ones."""
    keys = {(p.key, p.question.id, m): _score_key(p, m) for p in plan for m in metrics}
    found = store.scores(keys.values())
    new = {}
    for p in plan:
        for m in metrics:
            k = keys[p.key, p.question.id, m]
            if k not in found and k not in new:
                s = SCORERS[m](generations[p.key]["answer"], p.question.answers)
                new[k] = {"value": s.value, "reason": s.reason} | (
                    {"label": s.label} if s.label is not None else {}
                )
    if new:
        store.put_scores(new.items())
    return found | new, len(new)


def _row(p: _Item, g: dict, scores: dict, passages: dict, metrics) -> dict:
    q = p.question
    return {
        "variant": p.variant,
        "question_id": q.id,
        "question": q.text,
        "category": q.category,
        "slice": q.slice,
        "gold_answers": list(q.answers),
        "gold_passage_ids": list(q.gold_passage_ids),
        "answer": g["answer"],
        "retrieved": None if p.hits is None else [{"id": h.passage_id, "score": h.score} for h in p.hits],
        "retrieved_text": None if p.hits is None else [passages[h.passage_id].text for h in p.hits],
        "retrieval": _retrieval(p) if p.ranked is not None and q.gold_passage_ids else None,
        "scores": {m: scores[_score_key(p, m)] for m in metrics},
        "tokens_in": g["tokens_in"],
        "tokens_out": g["tokens_out"],
        "latency_s": g["latency_s"],
        "adapter": p.adapter,
        "generation_key": p.key,
    }


def _retrieval(p: _Item) -> dict:
    """Retrieval metrics of one RAG row: at the variant's k (what the prompt read) and at 10."""
    k, gold = len(p.hits), p.question.gold_passage_ids
    m = question_metrics([h.passage_id for h in p.ranked], gold, ks=(k, 10))
    return {
        "k": k,
        "recall@k": m[f"recall@{k}"],
        "hit@k": m[f"hit@{k}"],
        "recall@10": m["recall@10"],
        "hit@10": m["hit@10"],
        "mrr@10": m["mrr@10"],
        "ndcg@10": m["ndcg@10"],
        "gold_in_prompt": bool(set(gold) & {h.passage_id for h in p.hits}),
    }


def adapter_checks(rows: list[dict], config: BenchConfig) -> dict:
    """For each adapter variant, compare its answers with those of the variant that has the same
    retrieval and no adapter: identical on every question means the adapter did nothing (one that
    silently failed to load, or a no-op). Flagged in the report."""
    answers: dict[str, dict[str, str]] = {}
    for r in rows:
        answers.setdefault(r["variant"], {})[r["question_id"]] = r["answer"]
    plain = {
        (v.retriever, v.k if v.retriever else None): v.name for v in config.variants if not _has_adapter(v)
    }
    checks = {}
    for v in config.variants:
        if not _has_adapter(v):
            continue
        twin = plain.get((v.retriever, v.k if v.retriever else None))
        if twin is None:
            checks[v.name] = {"compared_with": None, "identical": None, "n": None, "inert": None}
            continue
        mine, theirs = answers[v.name], answers[twin]
        same = sum(mine[q] == theirs.get(q) for q in mine)
        checks[v.name] = {
            "compared_with": twin,
            "identical": same,
            "n": len(mine),
            "inert": same == len(mine),
        }
    return checks


def _has_adapter(v) -> bool:
    return v.adapter is not None or v.adapter_path is not None


def _gate(config: BenchConfig, config_path: Path, rows: list[dict]) -> dict:
    if config.gate is None:
        return {"status": "not configured"}
    path = config_path.parent / config.gate.baseline
    try:
        baseline = gate.load_baseline(path)
    except gate.GateError as e:
        raise InputError(str(config_path), str(e), field="gate.baseline") from None
    rules = [r.model_dump() for r in config.gate.rules]
    result = gate.check(rows, baseline, rules, samples=config.bootstrap_samples, seed=config.seed)
    return result | {"baseline": str(path)}


def _write_run(config: BenchConfig, config_path: Path, rows, summary, manifest) -> Path:
    runs = (config_path.parent / config.runs_dir).resolve()
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + digest(manifest["config"], 6)
    runs.mkdir(parents=True, exist_ok=True)
    run_id, n = stem, 1
    _remove_abandoned(runs)
    while (runs / run_id).exists() or list(runs.glob(f".{run_id}.*.tmp")):  # two runs in one second
        n += 1
        run_id = f"{stem}-{n}"
    tmp = runs / f".{run_id}.{os.getpid()}.tmp"
    tmp.mkdir()
    manifest["run_id"] = run_id
    with (tmp / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    write_html(tmp / "report.html", rows=rows, summary=summary, manifest=manifest)
    (tmp / "report.md").write_text(render_markdown(summary, manifest), encoding="utf-8")
    write_junit(tmp / "junit.xml", summary)
    final = runs / run_id
    os.rename(tmp, final)
    link = runs / f".latest.{os.getpid()}.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(run_id)
    os.replace(link, runs / "latest")
    return final


def _remove_abandoned(runs: Path) -> None:
    """Remove half-assembled run folders left by processes that were killed (their pid is gone)."""
    import shutil

    for tmp in runs.glob(".*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue  # not ours
        except ProcessLookupError:
            if tmp.is_symlink() or tmp.is_file():
                tmp.unlink(missing_ok=True)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


def _git_state(where: Path) -> dict:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )

    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": commit.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def _hardware() -> dict:
    import torch

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
