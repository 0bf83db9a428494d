"""`ragvft bench`: suite -> model -> generate -> score -> report, writing `runs/<run-id>/`.

The run folder is assembled under a temporary name and renamed into place, then `runs/latest` is
pointed at it: a failed or killed run leaves no half-written run behind. Generations go through
the results store, so an unchanged rerun generates nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import prompts
from harness.backend import HFBackend
from harness.basemodel import BUILD_RECORD, BaseModelSpec, build_base_model, is_built
from harness.cache import cache_root, digest, library_versions
from harness.config import BenchConfig
from harness.progress import progress_bar
from harness.store import Store
from judges import exact_match, token_f1
from reports.aggregate import summarize
from reports.html import write_html
from retrievers import BM25Retriever
from suites.builtin import builtin_suite
from suites.schema import Suite

SCORERS = {"em": exact_match, "f1": token_f1}


@dataclass
class RunResult:
    run_dir: Path
    summary: dict
    rows: list[dict] = field(default_factory=list)


def load_suite(config: BenchConfig) -> Suite:
    b = config.suite.builtin
    return builtin_suite(b.seed, scale=b.scale, corpus_only_fraction=b.corpus_only_fraction)


def resolve_model(config: BenchConfig, timings: dict) -> tuple[str, str, dict]:
    """(path or hub id, identity for cache keys, what the manifest should say about it)."""
    m = config.model
    if m.builtin is not None:
        spec = BaseModelSpec(
            seed=config.suite.builtin.seed,
            domain_scale=config.suite.builtin.scale,
            intermediate_size=3 * m.builtin.hidden_size,
            **m.builtin.model_dump(),
        )
        t0, cached = time.time(), is_built(spec)
        path = build_base_model(spec)
        timings["base_model_s"] = round(time.time() - t0, 2)
        record = json.loads((path / BUILD_RECORD).read_text())
        info = {
            "kind": "builtin",
            "key": spec.key(),
            "status": "cached" if cached else "built",
            "build": record,
        }
        return str(path), f"builtin:{spec.key()}", info
    return (
        m.path,
        _model_identity(m.path, m.revision),
        {"kind": "path", "path": m.path, "revision": m.revision, "status": "external"},
    )


def _model_identity(name_or_path: str, revision: str | None) -> str:
    """A local folder is identified by the hash of its files' contents; a hub id by id and revision."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return f"hub:{name_or_path}@{revision or 'main'}"
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"local:{h.hexdigest()[:16]}"


def bench(config: BenchConfig, *, config_path: Path) -> RunResult:
    started = time.time()
    timings: dict[str, float] = {}
    suite = load_suite(config)
    model_path, model_id, model_info = resolve_model(config, timings)
    passages = suite.passage_map()
    retrievers = {
        name: BM25Retriever(suite.passages, k1=r.k1, b=r.b) for name, r in config.retrievers.items()
    }
    store = Store(cache_root() / "results.sqlite")
    decoding = {"greedy": True, "max_new_tokens": config.generation.max_new_tokens}
    rows: list[dict] = []
    plan = []  # (variant, question, hits, prompt, key)
    searched: dict[tuple[str, int], list] = {}  # variants sharing a retriever and k search once
    for v in config.variants:
        if v.retriever and (v.retriever, v.k) not in searched:
            searched[v.retriever, v.k] = retrievers[v.retriever].search(
                [q.text for q in suite.questions], v.k
            )
        hits = searched[v.retriever, v.k] if v.retriever else [None] * len(suite.questions)
        for q, found in zip(suite.questions, hits):
            context = None if found is None else [passages[h.passage_id].text for h in found]
            prompt = prompts.build(q.text, context)
            key = digest({"model": model_id, "adapter": None, "prompt": prompt, "decoding": decoding}, 32)
            plan.append((v, q, found, prompt, key))
    cached = store.generations(k for *_, k in plan)
    missing = {key: prompt for _, _, _, prompt, key in plan if key not in cached}
    t0 = time.time()
    if missing:
        backend = HFBackend(
            model_path,
            revision=config.model.revision,
            trust_remote_code=config.model.trust_remote_code,
            batch_size=config.generation.batch_size,
            max_new_tokens=config.generation.max_new_tokens,
        )
        keys = list(missing)
        with progress_bar("generating", len(keys)) as advance:
            step = 4 * config.generation.batch_size  # commit often: a killed run keeps what it finished
            for i in range(0, len(keys), step):
                chunk = keys[i : i + step]
                done = backend.generate([missing[k] for k in chunk], progress=advance)
                store.put_generations((k, asdict(c) | {"answer": c.text}) for k, c in zip(chunk, done))
    timings["generate_s"] = round(time.time() - t0, 2)
    generations = store.generations(k for *_, k in plan)
    store.close()

    t0 = time.time()
    for v, q, found, prompt, key in plan:
        g = generations[key]
        scores = {m: SCORERS[m](g["answer"], q.answers) for m in config.metrics}
        rows.append(
            {
                "variant": v.name,
                "question_id": q.id,
                "question": q.text,
                "category": q.category,
                "slice": q.slice,
                "gold_answers": list(q.answers),
                "gold_passage_ids": list(q.gold_passage_ids),
                "answer": g["answer"],
                "retrieved": None
                if found is None
                else [{"id": h.passage_id, "score": h.score} for h in found],
                "retrieved_text": None if found is None else [passages[h.passage_id].text for h in found],
                "scores": {m: {"value": s.value, "reason": s.reason} for m, s in scores.items()},
                "tokens_in": g["tokens_in"],
                "tokens_out": g["tokens_out"],
                "latency_s": g["latency_s"],
                "generation_key": key,
            }
        )
    timings["score_s"] = round(time.time() - t0, 2)
    summary = summarize(rows, config, suite_name=suite.name)
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
        "model": model_info,
        "seeds": {"run": config.seed, "suite": config.suite.builtin.seed if config.suite.builtin else None},
        "git": _git_state(config_path.parent),
        "versions": {"python": platform.python_version(), **library_versions()},
        "hardware": _hardware(),
        "timings": timings,
        "cache": {
            "generations_cached": len(plan) - len(missing),
            "generations_computed": len(missing),
            "base_model": model_info["status"],
        },
    }
    run_dir = _write_run(config, config_path, rows, summary, manifest)
    return RunResult(run_dir, summary, rows)


def _write_run(config: BenchConfig, config_path: Path, rows, summary, manifest) -> Path:
    runs = (config_path.parent / config.runs_dir).resolve()
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + digest(manifest["config"], 6)
    runs.mkdir(parents=True, exist_ok=True)
    run_id, n = stem, 1
    while (runs / run_id).exists() or (runs / f".{run_id}.tmp").exists():  # two runs in one second
        n += 1
        run_id = f"{stem}-{n}"
    tmp = runs / f".{run_id}.tmp"
    tmp.mkdir()
    manifest["run_id"] = run_id
    with (tmp / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    write_html(tmp / "report.html", rows=rows, summary=summary, manifest=manifest)
    final = runs / run_id
    os.rename(tmp, final)
    link = runs / ".latest.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(run_id)
    os.replace(link, runs / "latest")
    return final


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
