"""The judge stage of a bench: LLM-as-judge grading and pairwise comparison, ragas evals, and the
judge's reliability, added to the result rows.

Every judge call is cached in the results store under a key of the judge's identity and the full
prompt (which holds every input), so a rerun asks the judge nothing it asked before; a call that
failed for good is not cached and is tried again by the next run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

from core.cache import digest, model_identity
from core.errors import InputError
from core.progress import progress_bar
from harness.artifacts.model import shipped_judge_for
from harness.engines import ENGINES, Decoding, Engine, Request
from harness.prompts import RAW, PromptFormat
from harness.run.engine import LazyEngine, loading
from judges.llm_judge import (
    PAIRWISE_VALUE,
    PROMPT_VERSION,
    ask,
    combine_orders,
    grade_prompt,
    grade_scores,
    pairwise_prompt,
    parse_grade,
    parse_preference,
)
from judges.reliability import reliability
from judges.types import Score


class CachedJudge:
    """A judge backend behind the store's call cache. The backend is made only when a call misses."""

    def __init__(
        self,
        identity: str,
        make_backend: Callable[[], object],
        store,
        info: dict | None = None,
        *,
        serial=True,
    ):
        self.identity, self._make, self._backend, self.store = identity, make_backend, None, store
        self.info = {"identity": identity} | (info or {})  # what the manifest says of the judge
        # ragas calls from worker threads: SQLite always needs one caller at a time, an in-process
        # model too (`serial`); an HTTP client runs concurrent calls itself.
        self._store_lock, self._backend_lock = threading.Lock(), threading.Lock()
        self._serial = serial
        self.asked = self.cached = 0
        self.errors: dict[str, str] = {}  # prompt -> why its call failed for good

    def _key(self, prompt: str) -> str:
        return digest({"judge": self.identity, "version": PROMPT_VERSION, "prompt": prompt}, 32)

    def _backend_for_call(self):
        with self._backend_lock:
            if self._backend is None:
                self._backend = self._make()
            return self._backend

    def complete(self, prompts: list[str], progress=None) -> list[str | None]:
        """The judge's reply to each prompt (None where the call failed for good)."""
        keys = [self._key(p) for p in prompts]
        with self._store_lock:
            found = self.store.judge_calls(keys)
        missing = list(dict.fromkeys(p for p, k in zip(prompts, keys) if k not in found))
        if progress is not None and len(prompts) > len(missing):
            progress(len(prompts) - len(missing))
        if missing:
            backend = self._backend_for_call()
            if self._serial:
                with self._backend_lock:
                    replies = backend.complete(missing, progress=progress)
            else:
                replies = backend.complete(missing, progress=progress)
            fresh = {}
            for p, r in zip(missing, replies):
                if r.text is None:
                    self.errors[p] = r.error or "the judge call failed"
                else:
                    fresh[self._key(p)] = r.text
            with self._store_lock:
                self.store.put_judge_calls(fresh.items())
                self.asked += len(missing)
                self.cached += len(prompts) - len(missing)
            found |= fresh
        else:
            with self._store_lock:
                self.cached += len(prompts)
        return [found.get(k) for k in keys]

    def complete_one(self, prompt: str) -> str | None:
        return self.complete([prompt])[0]


def run_judge(
    config, rows: list[dict], judge: CachedJudge, *, passages: dict, encoder=None, timings: dict
) -> dict:
    """Add the judge's scores to `rows` (in place) and return the reliability and cache figures."""
    j = config.judge
    t0 = time.time()
    planted = {}
    if "grade" in j.modes:
        _grade(rows, judge)
        planted = _planted(rows, judge)
    if "pairwise" in j.modes:
        _pairwise(rows, judge, config.baseline)
    if j.ragas:
        concurrency = j.http.concurrency if j.http else 4
        _ragas(rows, judge, j.ragas, passages, encoder, concurrency=concurrency, threshold=j.ragas_threshold)
    timings["judge_s"] = round(time.time() - t0, 2)
    return {
        "judge": judge.identity,
        "modes": list(j.modes),
        "metrics": config.judge_metrics(),
        "ragas": list(j.ragas),
        "calls_made": judge.asked,
        "calls_cached": judge.cached,
        "calls_failed": len(judge.errors),
        **reliability(rows),
    } | ({"planted": planted} if planted else {})


def _planted(rows: list[dict], judge: CachedJudge) -> dict:
    """Restatements of the gold answer that exact match rejects (currency written out, units, word
    order: `harness.builtin.restate`), one a question in turn through its templates, graded by the
    judge: the share it accepts. Only for questions of the answer kinds it knows (the built-in
    domain's); {} for any other suite."""
    from harness.builtin.restate import planted

    questions = {r["question_id"]: r for r in rows}
    items = []
    for i, r in enumerate(questions.values()):
        shown = planted(r.get("category") or "", r["gold_answers"]) if r["gold_answers"] else []
        if shown:
            items.append((r, shown[i % len(shown)]))
    if not items:
        return {}
    prompts = [grade_prompt(r["question"], r["gold_answers"], a) for r, a in items]
    with progress_bar("judging: planted restatements", len(prompts)) as advance:
        answers = ask(
            lambda ps, first: judge.complete(ps, progress=advance if first else None), prompts, parse_grade
        )
    verdicts = [parsed.verdict if parsed else None for parsed, _, _ in answers]
    decided = [v for v in verdicts if v is not None]
    missed = [
        {"question": r["question"], "answer": a} for (r, a), v in zip(items, verdicts) if v == "incorrect"
    ]
    return {
        "n": len(items),
        "accepted": round(decided.count("correct") / len(decided), 4) if decided else None,
        "undetermined": len(items) - len(decided),
        "examples_rejected": missed[:5],
    }


def _put(row: dict, scores: dict[str, Score]) -> None:
    for name, s in scores.items():
        row["scores"][name] = {"value": s.value, "reason": s.reason} | ({"label": s.label} if s.label else {})


def _grade(rows: list[dict], judge: CachedJudge) -> None:
    prompts = [grade_prompt(r["question"], r["gold_answers"], r["answer"]) for r in rows]
    unique = list(dict.fromkeys(prompts))
    with progress_bar("judging: grade", len(unique)) as advance:
        answers = ask(
            lambda ps, first: judge.complete(ps, progress=advance if first else None), unique, parse_grade
        )
    by_prompt = dict(zip(unique, answers))
    for r, p in zip(rows, prompts):
        parsed, raw, attempts = by_prompt[p]
        _put(r, grade_scores(parsed, raw, judge.errors.get(p)))
        r.setdefault("judge", {})["grade"] = {"raw": raw, "attempts": attempts} | (
            asdict(parsed) if parsed else {}
        )


def _pairwise(rows: list[dict], judge: CachedJudge, baseline: str) -> None:
    """Each non-baseline row against the baseline variant's answer to the same question, both orders."""
    theirs = {r["question_id"]: r for r in rows if r["variant"] == baseline}
    todo, prompts = [], []
    for r in rows:
        other = theirs.get(r["question_id"])
        if r["variant"] == baseline or other is None:
            continue
        todo.append((r, other))
        if r["answer"] != other["answer"]:
            q, gold = r["question"], r["gold_answers"]
            prompts += [pairwise_prompt(q, gold, r["answer"], other["answer"])]
            prompts += [pairwise_prompt(q, gold, other["answer"], r["answer"])]
    unique = list(dict.fromkeys(prompts))
    with progress_bar("judging: pairwise", len(unique)) as advance:
        answers = dict(
            zip(
                unique,
                ask(
                    lambda ps, first: judge.complete(ps, progress=advance if first else None),
                    unique,
                    parse_preference,
                ),
            )
        )
    for r, other in todo:
        detail = {"against": baseline, "answer": r["answer"], "against_answer": other["answer"]}
        if r["answer"] == other["answer"]:
            result, consistent, reason = "tie", None, f"same answer as {baseline}: a tie, not asked"
            detail["identical"] = True
        else:
            q, gold = r["question"], r["gold_answers"]
            ab = answers[pairwise_prompt(q, gold, r["answer"], other["answer"])]
            ba = answers[pairwise_prompt(q, gold, other["answer"], r["answer"])]
            result, consistent = combine_orders(ab[0], ba[0])
            detail |= {
                "ab": ab[0].winner if ab[0] else None,
                "ba": ba[0].winner if ba[0] else None,
                "rationale_ab": ab[0].rationale if ab[0] else ab[1],
                "rationale_ba": ba[0].rationale if ba[0] else ba[1],
            }
            if result is None:
                reason = "undetermined: " + ("unparseable judge output" if ab[1] and ba[1] else "call failed")
            elif consistent:
                reason = f"{result} against {baseline} in both orders: {detail['rationale_ab']}"
            else:
                reason = f"the two orders disagree ({detail['ab']} then {detail['ba']}): counted as a tie"
        detail |= {"result": result, "consistent": consistent}
        value = PAIRWISE_VALUE[result] if result else None
        _put(r, {"pairwise": Score("pairwise", value, reason, result)})
        r.setdefault("judge", {})["pairwise"] = detail


def _ragas(
    rows: list[dict],
    judge: CachedJudge,
    names: list[str],
    passages: dict,
    encoder,
    *,
    concurrency: int,
    threshold,
) -> None:
    """ragas scores for the rows that read retrieved passages (RAG variants) only."""
    from judges.reference_free import ragas_scores

    rag = [r for r in rows if r.get("retrieved_text") is not None]
    items = [
        {
            "question": r["question"],
            "answer": r["answer"],
            "contexts": r["retrieved_text"],
            "reference": r["gold_answers"][0] if r["gold_answers"] else "",
            "reference_contexts": [passages[i].text for i in r["gold_passage_ids"] if i in passages],
        }
        for r in rag
    ]
    with progress_bar("judging: ragas", len(items) * len(names)) as advance:
        scored = ragas_scores(
            items,
            names,
            complete=judge.complete_one,
            encoder=encoder,
            concurrency=concurrency,
            threshold=threshold,
            progress=advance,
        )
    for r, scores in zip(rag, scored):
        _put(r, scores)


class EngineJudge:
    """A judge backend on an engine (the `complete(prompts) -> [Reply]` interface of every judge
    backend): greedy, not cut at newlines (a judge's JSON may span lines), with an adapter or none,
    each judge prompt a user turn of the judge model's chat template when it has one (`fmt`)."""

    def __init__(self, engine: Engine, adapter: str | None, max_new_tokens: int, fmt: PromptFormat = RAW):
        self.engine, self.adapter, self.fmt = engine, adapter, fmt
        self.decoding = Decoding(max_new_tokens=max_new_tokens, stop=())

    def complete(self, prompts, *, progress=None):
        from judges.http import Reply

        done = self.engine.generate(
            [Request(self.fmt.instruction(p), adapter=self.adapter, decoding=self.decoding) for p in prompts],
            progress=progress,
        )
        return [Reply(c.text, None, 1) for c in done]


def _engine_tag(identity: dict) -> str:
    return "/".join(str(identity[k]) for k in ("engine", "dtype", "device"))


def make_judge(config, suite, base, store, engine, timings: dict, adapter=None) -> CachedJudge:
    """The configured judge behind the call cache: built-in (trained when missing, on the run's shared
    engine), HF (the run's engine kind; the shared one when it is the base model) or HTTP."""

    j, g = config.judge, config.generation
    kind = j.engine or (g.engine if g.engine != "openai" else "hf")  # a server judges through judge.http

    def options(name):
        return getattr(g, name, None) if name == g.engine else None

    def judge_engine(model) -> LazyEngine:
        """An engine of the judge's own: another model, or another engine kind than the run's."""
        return LazyEngine(
            kind,
            model.path,
            revision=model.revision,
            trust_remote_code=model.trust_remote_code,
            batch_size=g.batch_size,
            **loading(config.model),  # the judge's model loads as the base does
            options=options(kind),
            source=config.source,
        )

    if j.http is not None:
        h = j.http
        from core.http import api_key
        from judges.http import HTTPJudge

        try:
            key = api_key(h.api_key_env)
        except LookupError as e:
            raise InputError(config.source, str(e), field="judge.http") from None

        client = HTTPJudge(  # makes no connection until asked
            h.base_url,
            h.model,
            api_key=key,
            concurrency=h.concurrency,
            timeout_s=h.timeout_s,
            max_retries=h.max_retries,
            max_tokens=h.max_tokens,
        )
        info = {"kind": "http", "base_url": h.base_url, "model": h.model, "api_key_env": h.api_key_env}
        return CachedJudge(client.identity, lambda: client, store, info, serial=False)
    if j.hf is not None:
        model = model_identity(j.hf.path, j.hf.revision)
        adapter_id = model_identity(j.hf.adapter_path) if j.hf.adapter_path else None
        identity = f"hf:{model}|{adapter_id}"
        max_new = j.hf.max_new_tokens
        info = {"kind": "hf", "path": j.hf.path, "adapter_path": j.hf.adapter_path}

        fmt = base.prompt_format if model == base.identity else _judge_format(j.hf)

        def hf():
            shared = engine if model == base.identity and kind == engine.name else judge_engine(j.hf)
            name = shared.with_adapter(adapter_id, j.hf.adapter_path, "judge") if adapter_id else None
            return EngineJudge(shared.get(), name, max_new, fmt)

    elif adapter is None and (shipped := shipped_judge_for(config, base)) is not None:
        from types import SimpleNamespace

        from harness.builtin.shipped import shipped_identity

        identity, max_new, fmt = shipped_identity(shipped), 8, base.prompt_format
        record = json.loads((shipped / "ragvft_build.json").read_text())
        info = {"kind": "builtin", "shipped": str(shipped), "recipe_key": record["recipe_key"]}

        def hf():
            folder = SimpleNamespace(path=str(shipped), revision=None, trust_remote_code=False)
            return EngineJudge(judge_engine(folder).get(), None, max_new, fmt)

    else:
        from harness.artifacts import judge_adapter

        a = adapter or judge_adapter(config, suite, base, timings)
        identity, max_new, fmt = f"builtin:{a.identity}", 8, base.prompt_format
        info = {"kind": "builtin", "adapter": a.manifest()}

        def hf():
            shared = engine if kind == engine.name else judge_engine(base)
            return EngineJudge(shared.get(), shared.with_adapter(a.identity, a.path, "judge"), max_new, fmt)

    tag = (
        engine.identity if kind == engine.name else ENGINES[kind].identity(config.model.dtype, options(kind))
    )
    identity = f"{identity}|max_new_tokens={max_new}|engine={_engine_tag(tag)}"
    if fmt.chat:  # a prompt's key holds the judge prompt; the template it is rendered through, here
        identity += f"|format={digest(fmt.key(), 12)}"
    return CachedJudge(identity, hf, store, info | {"engine": tag, "prompt_format": fmt.key()})


def _judge_format(model) -> PromptFormat:
    """A judge model's prompt format: its tokenizer's chat template when it has one, no system turn."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model.path, revision=model.revision, trust_remote_code=model.trust_remote_code
    )
    return PromptFormat.of(tokenizer, "auto", None)
