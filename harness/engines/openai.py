"""Any OpenAI-compatible server as an engine (vLLM, SGLang, TGI, llama.cpp): each adapter served
under its own model name, one or more replicas behind `base_url`.

A request with a `prompt` goes to `POST {base_url}/completions`, one with chat `messages` to
`/chat/completions`: greedy (temperature 0, top_p 1, n 1), `max_tokens` and `stop` from its
`Decoding`. The answer is cut at the first stop string here as well (a server may ignore `stop`) and
stripped, as the HF engine does. The base model is the served model `models["base"]` (default
"base"); an adapter added with label L is the served model `models[L]` (default L). Requests go
through `core.http.HTTPPool` (the judge's transport): `concurrency` connections per replica pulling
from one queue, retries with backoff on 429/5xx/timeouts, the api key only in the Bearer header. A
batch with any request failing for good raises RuntimeError (no partial results). `check()` asks
every replica's `/models` first, so a missing model or a dead server shows before any generation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.engines.types import Completion, EngineUnavailable, LoadSpec, Request


class OpenAIOptions(BaseModel):
    """`generation.openai`: where the server is and what it calls each model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: list[str] = Field(
        ...,
        min_length=1,
        description="The server's /v1 URL, e.g. http://127.0.0.1:8000/v1, or a list of replicas serving the "
        "same models (requests are spread over them).",
    )
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (never the key itself)."
    )
    concurrency: int = Field(16, ge=1, le=1024, description="Requests in flight at once, per base_url.")
    timeout_s: float = Field(120.0, gt=0, description="Per request.")
    max_retries: int = Field(3, ge=0, le=10, description="Retries on 429, 5xx, timeouts, with backoff.")
    backoff_s: float = Field(
        0.5, ge=0, le=20, description="Wait before the first retry, doubled for each next (Retry-After wins)."
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="The served model name of the base model ('base') and of each adapter (by its method, "
        "e.g. sft; `sft-s8` for seed 8 when training.seeds has several). Unlisted: the name itself.",
    )

    @field_validator("base_url", mode="before")
    @classmethod
    def _listed(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("base_url")
    @classmethod
    def _http(cls, urls: list[str]) -> list[str]:
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"{u!r} is not an http(s) URL")
        return [u.rstrip("/") for u in urls]


def openai_identity(dtype: str = "auto", options: OpenAIOptions | None = None) -> dict:
    """What answers from a server depend on, as far as the client can tell: the base model's served
    name (the replicas in `base_url` serve the same models, so they are not part of it)."""
    base = (options.models.get("base", "base")) if options else "base"
    return {"engine": "openai", "dtype": "server", "device": "server", "served_base": base}


class OpenAIEngine:
    """Generation on an OpenAI-compatible server (the `Engine` signature). Makes no connection until
    `check` or `generate` is called."""

    # One served model at a time: a vLLM server gave base requests sent beside LoRA requests the LoRA's
    # answers (docs/engines.md); grouping by model costs a server little and rules that out anywhere.
    mixes_adapters = False

    def __init__(
        self, spec: LoadSpec | str, *, batch_size: int = 32, options: OpenAIOptions | None
    ) -> None:
        """`spec`: the base model as the config names it, which the server has loaded (the loading
        settings are in-process engines'); `batch_size` is theirs too (`options.concurrency` here)."""
        spec = LoadSpec.of(spec)
        if options is None:
            raise ValueError("the openai engine needs generation.openai (its base_url at least)")
        from core.http import HTTPPool, api_key  # httpx: imported where used, not when engines are listed

        try:
            key = api_key(options.api_key_env)
        except LookupError as e:
            raise EngineUnavailable(
                f"{e} (generation.openai.api_key_env names it as holding the API key)"
            ) from None

        self.name_or_path = spec.path
        self.options = options
        self.identity = openai_identity(spec.dtype, options)
        self.chunk_size = max(64, 8 * options.concurrency * len(options.base_url))
        self.adapters: dict[str, str] = {}  # adapter name -> the served model name
        self._pool = HTTPPool(
            options.base_url,
            api_key=key,
            concurrency=options.concurrency,
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
            backoff_s=options.backoff_s,
        )

    def __repr__(self) -> str:
        return f"OpenAIEngine(base_url={self.options.base_url}, served_base={self.served_model(None)!r})"

    def served_model(self, label: str | None) -> str:
        """The served model name of an adapter label (None: the base model)."""
        label = "base" if label is None else label
        return self.options.models.get(label, label)

    def add_adapter(self, name: str, path: str | Path, *, label: str | None = None) -> None:
        """Requests naming adapter `name` go to the served model of `label` (default: `name`). The
        server must already serve it: nothing is uploaded (`check` tells)."""
        self.adapters[name] = self.served_model(name if label is None else label)

    def check(self, variants: dict[str, str | None]) -> list[str]:
        """One line per problem: a variant (name -> its adapter's label, None for the base) whose
        served model some base URL does not list in GET /models, or a base URL that cannot list its
        models (unreachable, refused key). Empty: all fine."""
        timeout = min(self.options.timeout_s, 10.0)
        replies = self._pool.get_each("/models", _model_ids, timeout_s=timeout)
        problems, served = [], {}
        for url, reply in zip(self._pool.base_urls, replies, strict=True):
            if reply.text is None:
                problems.append(f"cannot list the models of {url}: {reply.error}")
            else:
                served[url] = reply.text
        for variant, label in variants.items():
            model = self.served_model(label)
            missing = [(url, ", ".join(ids) or "nothing") for url, ids in served.items() if model not in ids]
            if missing:
                (url, has), others = missing[0], missing[1:]
                line = f"variant {variant!r} needs the model {model!r}, which {url} does not serve (it serves: {has})"
                problems.append(line + "".join(f", nor {u} (it serves: {h})" for u, h in others))
        return problems

    def generate(
        self, requests: Sequence[Request], *, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        """One completion per request, in request order; `progress(1)` as each finishes. Raises
        RuntimeError (one line) if any request fails for good: no partial results."""
        requests = list(requests)
        calls = [self._call(r) for r in requests]  # unknown adapters fail here, before any request
        replies = self._pool.post_all(calls, _answer, progress=progress)
        failed = [r.error for r in replies if r.text is None]
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(replies)} requests to {', '.join(self._pool.base_urls)} "
                f"failed; the first: {failed[0]}"
            )
        out = []
        for request, reply in zip(requests, replies, strict=True):
            assert reply.text is not None  # every failure raised above
            text, tokens_in, tokens_out = reply.text
            out.append(Completion(request.decoding.finish(text), tokens_in, tokens_out, reply.latency_s))
        return out

    def _call(self, request: Request) -> tuple[str, dict]:
        if request.adapter is None:
            model = self.served_model(None)
        elif request.adapter in self.adapters:
            model = self.adapters[request.adapter]
        else:
            raise KeyError(f"adapter {request.adapter!r} was not added (added: {sorted(self.adapters)})")
        decoding = request.decoding
        body: dict = {"model": model}
        if request.messages is None:
            path, body["prompt"] = "/completions", request.prompt
        else:
            path, body["messages"] = "/chat/completions", [dict(m) for m in request.messages]
        body |= {"max_tokens": decoding.max_new_tokens, "temperature": 0, "top_p": 1, "n": 1}
        stop = decoding.server_stops()
        if stop:
            body["stop"] = stop
        if decoding.logit_bias:
            body["logit_bias"] = {str(t): b for t, b in decoding.logit_bias}
        return path, body


def _answer(data: Any) -> tuple[str, int, int] | None:
    """(text, prompt tokens, completion tokens) of a completions or chat-completions body; None (or a
    KeyError and the like) when it is neither."""
    choice = data["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    if not isinstance(text, str):
        return None
    usage = data.get("usage") or {}
    return text, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _model_ids(data: Any) -> list[str] | None:
    """The model names of a GET /models body ({"data": [{"id": ...}, ...]}), sorted."""
    ids = [m["id"] for m in data["data"]]
    return sorted(ids) if all(isinstance(i, str) for i in ids) else None
