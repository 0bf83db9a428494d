"""An async client for JSON-over-HTTP APIs such as OpenAI-compatible servers (vLLM, TGI, Ollama,
hosted APIs): many calls in, one `Reply` per call out, in call order, with bounded concurrency and
retries. A call that fails for good comes back as a Reply with `text` None and the reason, never as
an exception, so one bad call does not lose a batch; what a failure means is the caller's business.

`HTTPPool` is generic over what a call is (a path under a base URL and a JSON body) and over what a
good answer is (`parse` turns a 200's JSON into a value; None, or a KeyError/IndexError/TypeError/
ValueError, means the body was malformed). Users: the LLM judge (`judges.http`) and the
OpenAI-compatible generation engine (`harness.engines.openai`).
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

T = TypeVar("T")
MAX_WAIT_S = 20.0  # cap on any one wait between attempts, backoff or Retry-After


@dataclass(frozen=True)
class Reply(Generic[T]):
    """One call's outcome. `text` is what `parse` made of the 200 response (the judge's: the assistant
    message content), None when the call failed for good; `error` then says why in one line ("HTTP 500
    after 4 attempts", "HTTP 400: <body>"). `latency_s`: wall time from the first attempt to the
    outcome, retries and waits included (left out of equality)."""

    text: T | None
    error: str | None
    attempts: int
    latency_s: float = field(default=0.0, compare=False)


def api_key(env_name: str | None) -> str | None:
    """The API key held by the environment variable `env_name` (None when no variable is named);
    LookupError naming the variable, never a value, when it is unset or empty."""
    if not env_name:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise LookupError(f"environment variable {env_name} is not set")
    return key


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine `make()` to the end and return its result, also when called from async code:
    a loop already running in this thread (a notebook, an async caller) refuses to nest
    `asyncio.run`, so the coroutine then gets its own loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class HTTPPool:
    """Calls to one or more base URLs (replicas serving the same API, like "http://h:8000/v1").

    Every base URL gets `concurrency` workers, each with its own client and one connection, and all
    workers take the next call from one shared queue when they are free, so a faster replica does
    more. Retried with exponential backoff (`backoff_s * 2**attempt`, capped, honouring Retry-After
    on 429 and 503): 429, 5xx, timeouts, connection errors and 200s that `parse` rejects. Any other
    4xx fails at once. `max_retries` counts retries, so a call gets at most `max_retries + 1`
    attempts; `timeout_s` bounds each attempt as a whole. The api key is sent as a Bearer header and
    appears nowhere else (not in errors or repr).
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("at least one base URL is needed")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"HTTPPool({self.base_urls}, concurrency={self.concurrency})"

    def post_all(
        self,
        calls: Sequence[tuple[str, dict]],
        parse: Callable[[Any], T | None],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[Reply[T]]:
        """POST each `(path, body)` to `{base_url}{path}` on whichever base URL has a free worker; one
        Reply per call, in the calls' order. `progress(1)` as each call finishes, success or final
        failure. Blocks until all are done (see `run_blocking`)."""
        calls = list(calls)
        return run_blocking(lambda: self._post_all(calls, parse, progress))

    def get_each(
        self, path: str, parse: Callable[[Any], T | None], *, timeout_s: float | None = None
    ) -> list[Reply[T]]:
        """GET `{base_url}{path}` on every base URL at once (`timeout_s` per attempt instead of the
        pool's); one Reply per base URL, in their order."""
        return run_blocking(lambda: self._get_each(path, parse, timeout_s or self.timeout_s))

    def redact(self, text: str) -> str:
        """`text` without the api key (a proxy or server may echo request headers in an error body)."""
        return text.replace(self._api_key, "<api key>") if self._api_key else text

    def _client(self, tls: ssl.SSLContext) -> httpx.AsyncClient:
        # One client with one connection per worker, rather than one pool of `concurrency`
        # connections: httpcore 1.0's pool bookkeeping grows with its connection count
        # (encode/httpcore#1035) and made a shared 16-connection pool CPU-bound.
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=1)
        return httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits, verify=tls)

    async def _post_all(
        self,
        calls: list[tuple[str, dict]],
        parse: Callable[[Any], T | None],
        progress: Callable[[int], None] | None,
    ) -> list[Reply[T]]:
        replies: dict[int, Reply[T]] = {}
        todo = iter(enumerate(calls))  # shared: each worker takes the next call when it is free
        tls = httpx.create_ssl_context()  # built once: loading the CA bundle costs ~0.1 s

        async def worker(base_url: str) -> None:
            async with self._client(tls) as client:
                for index, (path, body) in todo:
                    url = base_url + path
                    replies[index] = await self._call(client, "POST", url, body, parse, index, self.timeout_s)
                    if progress is not None:
                        progress(1)

        # Interleaved (a, b, a, b, ...) so a small batch is still spread over the replicas.
        workers = [u for _ in range(self.concurrency) for u in self.base_urls][: len(calls)]
        await asyncio.gather(*(worker(u) for u in workers))
        return [replies[i] for i in range(len(calls))]

    async def _get_each(
        self, path: str, parse: Callable[[Any], T | None], timeout_s: float
    ) -> list[Reply[T]]:
        tls = httpx.create_ssl_context()

        async def one(index: int, base_url: str) -> Reply[T]:
            async with self._client(tls) as client:
                return await self._call(client, "GET", base_url + path, None, parse, index, timeout_s)

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(self.base_urls))))

    async def _call(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        body: dict | None,
        parse: Callable[[Any], T | None],
        index: int,
        timeout_s: float,
    ) -> Reply[T]:
        t0 = time.perf_counter()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                # httpx's timeout is per read; this bounds the whole attempt, so a trickling server
                # cannot hold a slot for long.
                async with asyncio.timeout(timeout_s):
                    response = await client.request(method, url, json=body, timeout=timeout_s)
            except (TimeoutError, httpx.TimeoutException):
                why = "timed out"
            except httpx.TransportError as e:  # refused, reset, protocol errors
                why = f"connection error ({type(e).__name__}: {self.redact(one_line(str(e)))})"
            except httpx.HTTPError as e:  # a body that fails to decode, and the like
                why = f"bad response ({type(e).__name__}: {self.redact(one_line(str(e)))})"
            else:
                status = response.status_code
                if status == 200:
                    value = _parsed(response, parse)
                    if value is not None:
                        return Reply(value, None, attempt + 1, time.perf_counter() - t0)
                    why = "malformed response"
                elif status == 429 or status >= 500:
                    why = f"HTTP {status}"
                    if status in (429, 503):
                        retry_after = _retry_after(response)
                else:
                    why = f"HTTP {status}: {self.redact(one_line(response.text))}"
                    return Reply(None, why, attempt + 1, time.perf_counter() - t0)
            if attempt + 1 < attempts:
                await asyncio.sleep(self._wait(index, attempt, retry_after))
        return Reply(None, f"{why} after {attempts} attempts", attempts, time.perf_counter() - t0)

    def _wait(self, index: int, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_WAIT_S)
        delay = self.backoff_s * 2**attempt
        # Up to 10% jitter so calls that failed together do not retry in lockstep; seeded by call
        # and attempt so a rerun waits the same.
        delay += random.Random(f"{index}:{attempt}").uniform(0, 0.1 * delay)
        return min(delay, MAX_WAIT_S)


def _parsed(response: httpx.Response, parse: Callable[[Any], T | None]) -> T | None:
    """`parse` of the response's JSON, or None if the body is not JSON or not of the expected shape."""
    try:
        return parse(response.json())
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds; the HTTP-date form is ignored in favour of the usual backoff."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def one_line(text: str, limit: int = 200) -> str:
    """`text` on one line (whitespace runs made one space), cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
