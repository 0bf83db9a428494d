"""A client for any OpenAI-compatible chat-completions server (vLLM, TGI, Ollama, hosted APIs), for
LLM-as-judge scoring: many prompts in, one `Reply` per prompt out, in order, with bounded concurrency
and retries. A prompt that fails for good comes back as a Reply with `text` None and the reason, never
as an exception, so one bad prompt does not lose a batch. The transport (workers, retries, timeouts,
redaction) is `core.http.HTTPPool`, shared with the OpenAI-compatible generation engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.http import HTTPPool, Reply

__all__ = ["HTTPJudge", "Reply"]


class HTTPJudge:
    """Sends prompts to `{base_url}/chat/completions` (base_url like "http://127.0.0.1:8000/v1").

    Retried with exponential backoff (`backoff_s * 2**attempt`, capped, honouring Retry-After on 429
    and 503): 429, 5xx, timeouts, connection errors and 200s whose body is not chat-completions JSON.
    Any other 4xx fails at once. `max_retries` counts retries, so a prompt gets at most
    `max_retries + 1` attempts; `timeout_s` bounds each attempt as a whole. The api key is sent as a
    Bearer header and appears nowhere else (not in `identity`, errors or repr).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._api_key = api_key
        self.identity = f"http:{self.base_url}|{model}|max_tokens={max_tokens}|temperature={temperature}"

    def __repr__(self) -> str:
        return f"HTTPJudge({self.identity})"

    def complete(
        self,
        prompts: Sequence[str],
        *,
        progress: Callable[[int], None] | None = None,
        mode: str | None = None,  # a server's judge has no calibrated bias: every mode is asked alike
    ) -> list[Reply]:
        """One user message per prompt, answers in the prompts' order, at most `concurrency` requests
        in flight. `progress(1)` is called as each prompt finishes, success or final failure. Blocks
        until all are done, also when called from async code (the batch then runs on its own loop in
        a worker thread)."""
        pool = HTTPPool(  # built per call (no connection until used), so changed settings apply
            self.base_url,
            api_key=self._api_key,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
        )
        calls = [
            (
                "/chat/completions",
                {
                    "model": self.model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": self.max_tokens,
                    "temperature": self.temperature,
                },
            )
            for prompt in prompts
        ]
        return pool.post_all(calls, _content, progress=progress)


def _content(data: Any) -> str | None:
    """The first choice's message content, or None if the body is not chat-completions JSON."""
    content = data["choices"][0]["message"]["content"]
    return content if isinstance(content, str) else None
