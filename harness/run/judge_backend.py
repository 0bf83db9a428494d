"""The judge a bench asks: its backend (the built-in judge, an HF model on an engine, or an
OpenAI-compatible server) behind the results store's call cache.

Every judge call is cached under a key of the judge's identity and the full prompt (which holds every
input), so a rerun asks the judge nothing it asked before; a call that failed for good is not cached
and is tried again by the next run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.cache import digest, model_identity
from core.errors import InputError
from harness.artifacts.model import shipped_judge_for
from harness.engines import ENGINES, Decoding, Engine, LoadSpec, Request
from harness.prompts import RAW, PromptFormat
from harness.run.engine import LazyEngine, loading
from judges.llm_judge import PROMPT_VERSION

if TYPE_CHECKING:
    from core.http import Reply
    from harness.artifacts.model import BaseModel
    from harness.config import BenchConfig
    from harness.config.judge import HFJudgeConfig, JudgeConfig
    from harness.store import Store
    from harness.training import Adapter
    from suites.schema import Suite

Progress = Callable[[int], None]


class JudgeBackend(Protocol):
    """What answers a judge's prompts: one Reply per prompt, in order (`EngineJudge`, `HTTPJudge`)."""

    def complete(
        self, prompts: Sequence[str], *, progress: Progress | None = None, mode: str | None = None
    ) -> list[Reply]: ...


class CachedJudge:
    """A judge backend behind the store's call cache. The backend is made only when a call misses."""

    def __init__(
        self,
        identity: str,
        make_backend: Callable[[], JudgeBackend],
        store: Store,
        info: dict[str, Any] | None = None,
        *,
        serial: bool = True,
    ) -> None:
        self.identity, self._make, self.store = identity, make_backend, store
        self._backend: JudgeBackend | None = None
        self.info = {"identity": identity} | (info or {})  # what the manifest says of the judge
        # ragas calls from worker threads: SQLite always needs one caller at a time, an in-process
        # model too (`serial`); an HTTP client runs concurrent calls itself.
        self._store_lock, self._backend_lock = threading.Lock(), threading.Lock()
        self._serial = serial
        self._pending: list[dict[str, Any]] = []  # complete_one's calls waiting for the next batch
        self._pending_lock, self._batch_lock = threading.Lock(), threading.Lock()
        self.asked = self.cached = 0
        self.errors: dict[str, str] = {}  # prompt -> why its call failed for good

    def _key(self, prompt: str) -> str:
        return digest({"judge": self.identity, "version": PROMPT_VERSION, "prompt": prompt}, 32)

    def _backend_for_call(self) -> JudgeBackend:
        with self._backend_lock:
            if self._backend is None:
                self._backend = self._make()
            return self._backend

    def complete(
        self, prompts: list[str], progress: Progress | None = None, mode: str | None = None
    ) -> list[str | None]:
        """The judge's reply to each prompt (None where the call failed for good). `mode` ("pairwise")
        lets a backend decode its prompts as calibrated for them (`EngineJudge`)."""
        keys = [self._key(p) for p in prompts]
        with self._store_lock:
            found: dict[str, str] = self.store.judge_calls(keys)
        missing = list(dict.fromkeys(p for p, k in zip(prompts, keys, strict=True) if k not in found))
        if progress is not None and len(prompts) > len(missing):
            progress(len(prompts) - len(missing))
        if not missing:
            with self._store_lock:
                self.cached += len(prompts)
            return [found.get(k) for k in keys]
        fresh = self._ask(missing, progress, mode)
        with self._store_lock:
            self.store.put_judge_calls(fresh.items())
            self.asked += len(missing)
            self.cached += len(prompts) - len(missing)
        found |= fresh
        return [found.get(k) for k in keys]

    def _ask(self, prompts: list[str], progress: Progress | None, mode: str | None) -> dict[str, str]:
        """The backend's replies to `prompts`, by call key; a call that failed for good is in `errors`."""
        backend = self._backend_for_call()
        if self._serial:
            with self._backend_lock:
                replies = backend.complete(prompts, progress=progress, mode=mode)
        else:
            replies = backend.complete(prompts, progress=progress, mode=mode)
        fresh = {}
        for p, r in zip(prompts, replies, strict=True):
            if r.text is None:
                self.errors[p] = r.error or "the judge call failed"
            else:
                fresh[self._key(p)] = r.text
        return fresh

    def complete_one(self, prompt: str) -> str | None:
        """One reply, for callers on many threads (ragas). An in-process model answers the calls
        waiting together in one batch: one generate call for many prompts instead of one each."""
        if not self._serial:
            return self.complete([prompt])[0]
        slot: dict[str, Any] = {"prompt": prompt, "done": False, "reply": None}
        with self._pending_lock:
            self._pending.append(slot)
        with self._batch_lock:  # one batch at a time; its holder takes every call waiting
            if not slot["done"]:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                replies: list[str | None] | list[Exception]
                try:
                    replies = self.complete([s["prompt"] for s in batch])
                except Exception as e:  # noqa: BLE001  (raised again in every caller of the batch)
                    replies = [e] * len(batch)
                for s, r in zip(batch, replies, strict=True):
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
    ) -> None:
        self.engine, self.adapter, self.fmt = engine, adapter, fmt
        self.decoding = Decoding(max_new_tokens=max_new_tokens, stop=())
        self.pairwise = Decoding(max_new_tokens=max_new_tokens, stop=(), logit_bias=pairwise_bias)

    def complete(
        self, prompts: Sequence[str], *, progress: Progress | None = None, mode: str | None = None
    ) -> list[Reply]:
        from judges.http import Reply

        decoding = self.pairwise if mode == "pairwise" else self.decoding
        done = self.engine.generate(
            [Request(self.fmt.instruction(p), adapter=self.adapter, decoding=decoding) for p in prompts],
            progress=progress,
        )
        return [Reply(c.text, None, 1) for c in done]


@dataclass
class JudgeSetup:
    """What a judge is built from: the run's config, suite and base model, the results store (its call
    cache), the run's shared engine, and the built-in LoRA judge's adapter when `prepare_judge` made
    it. `kind`: the engine kind the judge runs on (`judge.engine`, else the run's; hf when the run
    generates on a server: a judge on a server is `judge.http`)."""

    config: BenchConfig
    suite: Suite
    base: BaseModel
    store: Store
    engine: LazyEngine
    timings: dict[str, float]
    adapter: Adapter | None = None
    judge: JudgeConfig = field(init=False)  # `config.judge`
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        if self.config.judge is None:
            raise ValueError("the config has no judge")
        self.judge, g = self.config.judge, self.config.generation
        self.kind = self.judge.engine or (g.engine if g.engine != "openai" else "hf")

    def options(self) -> Any:
        """The run's options for the judge's engine kind (`generation.<kind>`), when it is the run's."""
        g = self.config.generation
        return getattr(g, self.kind, None) if self.kind == g.engine else None

    def own_engine(self, path: str, revision: str | None = None, trust_remote_code: bool = False) -> LazyEngine:
        """An engine of the judge's own: another model, or another engine kind than the run's."""
        config = self.config
        return LazyEngine(
            self.kind,
            LoadSpec(path, revision, trust_remote_code, **loading(config.model)),  # loads as the base does
            batch_size=config.generation.batch_size,
            options=self.options(),
            source=config.source,
        )

    def on_engine(
        self,
        identity: str,
        make: Callable[[], EngineJudge],
        *,
        max_new: int,
        fmt: PromptFormat,
        info: dict[str, Any],
    ) -> CachedJudge:
        """A judge on an engine behind the call cache: its identity completed with what else decides
        its replies (reply length, engine, and the chat template a prompt is rendered through)."""
        engine = self.engine
        if self.kind == engine.name:
            tag = engine.identity
        else:
            tag = ENGINES[self.kind].identity(self.config.model.dtype, self.options())
        identity = f"{identity}|max_new_tokens={max_new}|engine={_engine_tag(tag)}"
        if fmt.chat:  # a prompt's key holds the judge prompt; the template it is rendered through, here
            identity += f"|format={digest(fmt.key(), 12)}"
        return CachedJudge(identity, make, self.store, info | {"engine": tag, "prompt_format": fmt.key()})


def _engine_tag(identity: dict[str, Any]) -> str:
    return "/".join(str(identity[k]) for k in ("engine", "dtype", "device"))


def _http_judge(s: JudgeSetup) -> CachedJudge:
    """An OpenAI-compatible server (`judge.http`), asked concurrently."""
    from core.http import api_key
    from judges.http import HTTPJudge

    h = s.judge.http
    assert h is not None  # `judge_kind` chose it for that
    try:
        key = api_key(h.api_key_env)
    except LookupError as e:
        raise InputError(s.config.source, str(e), field="judge.http") from None
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
    return CachedJudge(client.identity, lambda: client, s.store, info, serial=False)


def _hf_judge(s: JudgeSetup) -> CachedJudge:
    """A model of the user's (`judge.hf`), with its adapter if any: on the run's engine when it is the
    base model, else on an engine of its own."""
    from harness.pretrained.gguf import loadable

    j = s.judge.hf
    assert j is not None  # `judge_kind` chose it for that
    path, model = loadable(j.path, j.revision)
    j = j.model_copy(update={"path": path})
    adapter_id = model_identity(j.adapter_path) if j.adapter_path else None
    info = {"kind": "hf", "path": j.path, "adapter_path": j.adapter_path}
    fmt = s.base.prompt_format if model == s.base.identity else _judge_format(j)

    def make() -> EngineJudge:
        if model == s.base.identity and s.kind == s.engine.name:
            shared = s.engine
        else:
            shared = s.own_engine(j.path, j.revision, j.trust_remote_code)
        name = shared.with_adapter(adapter_id, j.adapter_path, "judge") if adapter_id and j.adapter_path else None
        return EngineJudge(shared.get(), name, j.max_new_tokens, fmt)

    return s.on_engine(f"hf:{model}|{adapter_id}", make, max_new=j.max_new_tokens, fmt=fmt, info=info)


def _shipped_judge(s: JudgeSetup) -> CachedJudge:
    """The shipped built-in judge (`judge.builtin` with nothing set, on the shipped base): a model of
    its own, with its calibrated pairwise bias."""
    from harness.builtin.judge_calibration import pairwise_bias
    from harness.builtin.judge_model import MAX_NEW_TOKENS
    from harness.builtin.shipped import shipped_identity

    shipped = shipped_judge_for(s.config, s.base)
    assert shipped is not None  # `judge_kind` chose it for that
    record = json.loads((shipped / "ragvft_build.json").read_text())
    bias = pairwise_bias(shipped)  # part of the identity: the shipped folder's hash holds it
    info: dict[str, Any] = {"kind": "builtin", "shipped": str(shipped), "recipe_key": record["recipe_key"]}
    if bias:
        info["pairwise_logit_bias"] = {str(t): b for t, b in bias}
    fmt = s.base.prompt_format

    def make() -> EngineJudge:
        return EngineJudge(s.own_engine(str(shipped)).get(), None, MAX_NEW_TOKENS, fmt, bias)

    return s.on_engine(shipped_identity(shipped), make, max_new=MAX_NEW_TOKENS, fmt=fmt, info=info)


def _lora_judge(s: JudgeSetup) -> CachedJudge:
    """The built-in judge as a LoRA adapter trained on the suite (`judge.builtin`, any other base), on
    the run's engine when it is of the judge's kind."""
    from harness.artifacts import judge_adapter

    a = s.adapter or judge_adapter(s.config, s.suite, s.base, s.timings)
    fmt = s.base.prompt_format

    def make() -> EngineJudge:
        b = s.base
        shared = s.engine if s.kind == s.engine.name else s.own_engine(b.path, b.revision, b.trust_remote_code)
        return EngineJudge(shared.get(), shared.with_adapter(a.identity, a.path, "judge"), 8, fmt)

    info = {"kind": "builtin", "adapter": a.manifest()}
    return s.on_engine(f"builtin:{a.identity}", make, max_new=8, fmt=fmt, info=info)


JudgeBuilder = Callable[[JudgeSetup], CachedJudge]

JUDGES: dict[str, JudgeBuilder] = {  # by `judge_kind`
    "http": _http_judge,
    "hf": _hf_judge,
    "shipped": _shipped_judge,
    "builtin": _lora_judge,
}


def judge_kind(config: BenchConfig, base: BaseModel) -> str | None:
    """Which of JUDGES the config's judge is (None: no judge): the one place that chooses. The
    built-in judge is the shipped one where the base is the shipped base it was fine-tuned from and
    `judge.builtin` sets nothing, else a LoRA adapter trained on the suite."""
    j = config.judge
    if j is None:
        return None
    if j.http is not None:
        return "http"
    if j.hf is not None:
        return "hf"
    return "builtin" if shipped_judge_for(config, base) is None else "shipped"


def prepare_judge(config: BenchConfig, suite: Suite, base: BaseModel, timings: dict[str, float]) -> Adapter | None:
    """What the judge needs before anything generates: the built-in LoRA judge's adapter (trained when
    missing), so that the shared engine's preflight checks it with the variants' (a shipped judge is
    a model of its own); None for any other judge."""
    if judge_kind(config, base) != "builtin":
        return None
    from harness.artifacts import judge_adapter

    return judge_adapter(config, suite, base, timings)


def make_judge(
    config: BenchConfig,
    suite: Suite,
    base: BaseModel,
    store: Store,
    engine: LazyEngine,
    timings: dict[str, float],
    adapter: Adapter | None = None,
) -> CachedJudge:
    """The configured judge (`judge_kind`) behind the call cache: built-in (shipped, or a LoRA trained
    when missing, on the run's shared engine), HF (the run's engine kind; the shared one when it is
    the base model) or HTTP."""
    kind = judge_kind(config, base)
    if kind is None:
        raise ValueError("the config has no judge")
    return JUDGES[kind](JudgeSetup(config, suite, base, store, engine, timings, adapter))


def _judge_format(model: HFJudgeConfig) -> PromptFormat:
    """A judge model's prompt format: its tokenizer's chat template when it has one, no system turn."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model.path, revision=model.revision, trust_remote_code=model.trust_remote_code
    )
    return PromptFormat.of(tokenizer, "auto", None)
