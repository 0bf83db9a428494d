"""A client for any OpenAI-compatible chat-completions server (vLLM, TGI, Ollama, hosted APIs), for
LLM-as-judge scoring: many prompts in, one `Reply` per prompt out, in order, with bounded concurrency
and retries. A prompt that fails for good comes back as a Reply with `text` None and the reason, never
as an exception, so one bad prompt does not lose a batch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

_MAX_WAIT_S = 20.0  # cap on any one wait between attempts, backoff or Retry-After


@dataclass(frozen=True)
class Reply:
    """One prompt's outcome. `text` is the assistant message content, None when the call failed for
    good; `error` then says why in one line ("HTTP 500 after 4 attempts", "HTTP 400: <body>")."""

    text: str | None
    error: str | None
    attempts: int


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
    ):
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
        self, prompts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> list[Reply]:
        """One user message per prompt, answers in the prompts' order, at most `concurrency` requests
        in flight. `progress(1)` is called as each prompt finishes, success or final failure. Blocks
        until all are done, also when called from async code (the batch then runs on its own loop in
        a worker thread)."""
        prompts = list(prompts)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._complete(prompts, progress))
        # A loop already runs in this thread (a notebook, an async caller) and asyncio.run refuses to
        # nest, so the batch gets its own loop in a worker thread.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(self._complete(prompts, progress))).result()

    async def _complete(self, prompts: list[str], progress: Callable[[int], None] | None) -> list[Reply]:
        replies: dict[int, Reply] = {}
        todo = iter(enumerate(prompts))  # shared: each worker takes the next prompt when it is free
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        tls = httpx.create_ssl_context()  # built once: loading the CA bundle costs ~0.1 s

        async def worker() -> None:
            # One client with one connection per worker, rather than one pool of `concurrency`
            # connections: httpcore 1.0's pool bookkeeping grows with its connection count
            # (encode/httpcore#1035) and made a shared 16-connection pool CPU-bound.
            limits = httpx.Limits(max_connections=1)
            async with httpx.AsyncClient(
                headers=headers, timeout=self.timeout_s, limits=limits, verify=tls
            ) as client:
                for index, prompt in todo:
                    replies[index] = await self._ask(client, index, prompt)
                    if progress is not None:
                        progress(1)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(prompts)))))
        return [replies[i] for i in range(len(prompts))]

    async def _ask(self, client: httpx.AsyncClient, index: int, prompt: str) -> Reply:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                # httpx's timeout is per read; this bounds the whole attempt, so a trickling server
                # cannot hold a slot for long.
                async with asyncio.timeout(self.timeout_s):
                    response = await client.post(f"{self.base_url}/chat/completions", json=body)
            except (TimeoutError, httpx.TimeoutException):
                why = "timed out"
            except httpx.TransportError as e:  # refused, reset, protocol errors
                why = f"connection error ({type(e).__name__}: {self._redact(_one_line(str(e)))})"
            except httpx.HTTPError as e:  # a body that fails to decode, and the like
                why = f"bad response ({type(e).__name__}: {self._redact(_one_line(str(e)))})"
            else:
                status = response.status_code
                if status == 200:
                    text = _content(response)
                    if text is not None:
                        return Reply(text, None, attempt + 1)
                    why = "malformed response"
                elif status == 429 or status >= 500:
                    why = f"HTTP {status}"
                    if status in (429, 503):
                        retry_after = _retry_after(response)
                else:
                    return Reply(
                        None, f"HTTP {status}: {self._redact(_one_line(response.text))}", attempt + 1
                    )
            if attempt + 1 < attempts:
                await asyncio.sleep(self._wait(index, attempt, retry_after))
        return Reply(None, f"{why} after {attempts} attempts", attempts)

    def _wait(self, index: int, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, _MAX_WAIT_S)
        delay = self.backoff_s * 2**attempt
        # Up to 10% jitter so prompts that failed together do not retry in lockstep; seeded by prompt
        # and attempt so a rerun waits the same.
        delay += random.Random(f"{index}:{attempt}").uniform(0, 0.1 * delay)
        return min(delay, _MAX_WAIT_S)

    def _redact(self, text: str) -> str:
        # A proxy or server may echo request headers in an error body.
        return text.replace(self._api_key, "<api key>") if self._api_key else text


def _content(response: httpx.Response) -> str | None:
    """The first choice's message content, or None if the body is not chat-completions JSON."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds; the HTTP-date form is ignored in favour of the usual backoff."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
