"""The judge a bench asks: its backend (the built-in judge, an HF model on an engine, or an
OpenAI-compatible server) behind the results store's call cache.

Every judge call is cached under a key of the judge's identity and the full prompt (which holds every
input), so a rerun asks the judge nothing it asked before; a call that failed for good is not cached
and is tried again by the next run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from core.cache import digest, model_identity
from core.errors import InputError
from harness.artifacts.model import shipped_judge_for
from harness.engines import ENGINES, Decoding, Engine, Request
from harness.prompts import RAW, PromptFormat
from harness.run.engine import LazyEngine, loading
from judges.llm_judge import PROMPT_VERSION


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
        self._pending: list[dict] = []  # complete_one's calls waiting for the next batch
        self._pending_lock, self._batch_lock = threading.Lock(), threading.Lock()
        self.asked = self.cached = 0
        self.errors: dict[str, str] = {}  # prompt -> why its call failed for good

    def _key(self, prompt: str) -> str:
        return digest({"judge": self.identity, "version": PROMPT_VERSION, "prompt": prompt}, 32)

    def _backend_for_call(self):
        with self._backend_lock:
            if self._backend is None:
                self._backend = self._make()
            return self._backend

    def complete(self, prompts: list[str], progress=None, mode: str | None = None) -> list[str | None]:
        """The judge's reply to each prompt (None where the call failed for good). `mode` ("pairwise")
        lets a backend decode its prompts as calibrated for them (`EngineJudge`)."""
        keys = [self._key(p) for p in prompts]
        with self._store_lock:
            found = self.store.judge_calls(keys)
        missing = list(dict.fromkeys(p for p, k in zip(prompts, keys) if k not in found))
        if progress is not None and len(prompts) > len(missing):
            progress(len(prompts) - len(missing))
        if missing:
            backend = self._backend_for_call()
            extra = {"mode": mode} if mode else {}
            if self._serial:
                with self._backend_lock:
                    replies = backend.complete(missing, progress=progress, **extra)
            else:
                replies = backend.complete(missing, progress=progress, **extra)
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
        """One reply, for callers on many threads (ragas). An in-process model answers the calls
        waiting together in one batch: one generate call for many prompts instead of one each."""
        if not self._serial:
            return self.complete([prompt])[0]
        slot = {"prompt": prompt, "done": False, "reply": None}
        with self._pending_lock:
            self._pending.append(slot)
        with self._batch_lock:  # one batch at a time; its holder takes every call waiting
            if not slot["done"]:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    replies = self.complete([s["prompt"] for s in batch])
                except Exception as e:  # noqa: BLE001  (raised again in every caller of the batch)
                    replies = [e] * len(batch)
                for s, r in zip(batch, replies):
                    s["reply"], s["done"] = r, True
        if isinstance(slot["reply"], Exception):
            raise slot["reply"]
        return slot["reply"]


class EngineJudge:
    """A judge backend on an engine (the `complete(prompts) -> [Reply]` interface of every judge
    backend): greedy, not cut at newlines (a judge's JSON may span lines), with an adapter or none,
    each judge prompt a user turn of the judge model's chat template when it has one (`fmt`). Pairwise
    prompts take the judge's calibrated logit bias on its verdict tokens when it has one."""

    def __init__(
        self,
        engine: Engine,
        adapter: str | None,
        max_new_tokens: int,
        fmt: PromptFormat = RAW,
        pairwise_bias: tuple[tuple[int, float], ...] = (),
    ):
        self.engine, self.adapter, self.fmt = engine, adapter, fmt
        self.decoding = Decoding(max_new_tokens=max_new_tokens, stop=())
        self.pairwise = Decoding(max_new_tokens=max_new_tokens, stop=(), logit_bias=pairwise_bias)

    def complete(self, prompts, *, progress=None, mode: str | None = None):
        from judges.http import Reply

        decoding = self.pairwise if mode == "pairwise" else self.decoding
        done = self.engine.generate(
            [Request(self.fmt.instruction(p), adapter=self.adapter, decoding=decoding) for p in prompts],
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
        from harness.pretrained.gguf import loadable

        path, model = loadable(j.hf.path, j.hf.revision)
        j = j.model_copy(update={"hf": j.hf.model_copy(update={"path": path})})
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

        from harness.builtin.judge_calibration import pairwise_bias
        from harness.builtin.judge_model import MAX_NEW_TOKENS
        from harness.builtin.shipped import shipped_identity

        identity, max_new, fmt = shipped_identity(shipped), MAX_NEW_TOKENS, base.prompt_format
        record = json.loads((shipped / "ragvft_build.json").read_text())
        bias = pairwise_bias(shipped)  # part of the identity: the shipped folder's hash holds it
        info = {"kind": "builtin", "shipped": str(shipped), "recipe_key": record["recipe_key"]}
        if bias:
            info["pairwise_logit_bias"] = {str(t): b for t, b in bias}

        def hf():
            folder = SimpleNamespace(path=str(shipped), revision=None, trust_remote_code=False)
            return EngineJudge(judge_engine(folder).get(), None, max_new, fmt, bias)

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
