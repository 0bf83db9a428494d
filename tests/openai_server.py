"""A real OpenAI-compatible server on 127.0.0.1, for tests and benchmarks: `POST /v1/chat/completions`,
`POST /v1/completions` (the prompt is the `prompt` field) and `GET /v1/models` (lists `models`).

    with serve(answer=lambda prompt: "yes") as server:
        HTTPJudge(server.url, "judge").complete(["Is it? [500x2]"])
        server.attempts["Is it? [500x2]"]  # 3

What a request gets is chosen by a marker in its prompt (the last message's content), so one server
serves every case; a prompt without one gets `behaviour`, by default a good answer (stop strings
are ignored, as some servers do):

    [good]        200 with `answer(prompt)`
    [malformed]   200 whose body is not JSON
    [nochoices]   200 with JSON that has no "choices"
    [slow]        waits `slow_s`, then a good answer
    [429xN]       429 with Retry-After: 0 for the first N attempts, then a good answer
    [500xN]       500 for the first N attempts, then a good answer
    [500]         500 always
    [400]         400 always (its message echoes the Authorization header)
    [nousage]     a good answer without "usage"
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_MARKER = re.compile(r"\[(good|malformed|nochoices|slow|429|500|400|nousage)(?:x(\d+))?\]")


def default_answer(prompt: str) -> str:
    return f"answer to: {prompt}"


@dataclass
class ChatServer:
    """The running server's URL and what it has received. Read the counters after the calls return."""

    url: str
    answer: Callable[[str], str]
    behaviour: str
    latency_s: float
    slow_s: float
    attempts: Counter = field(default_factory=Counter)  # requests received, per prompt
    headers: list[dict[str, str]] = field(default_factory=list)  # each request's headers, lower-cased
    bodies: list[dict] = field(default_factory=list)  # each request's JSON body
    max_in_flight: int = 0
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    models: tuple[str, ...] = ("base",)  # what GET /v1/models lists
    paths: list[str] = field(default_factory=list)  # each request's path, GETs included


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do; every reply sets Content-Length
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    chat: ChatServer  # set on a subclass per server

    def log_message(self, *args):
        pass  # quiet: tests read the record instead

    def do_GET(self):
        chat = self.chat
        with chat.lock:
            chat.paths.append(self.path)
            chat.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.path.rstrip("/") != "/v1/models":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in chat.models]})

    def do_POST(self):
        chat = self.chat
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        try:
            request = json.loads(body)
            if path == "/v1/completions":
                prompt = request["prompt"]
                if not isinstance(prompt, str):
                    raise TypeError(prompt)
            else:
                prompt = request["messages"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return self._send(400, {"error": {"message": f"body is not a {path[4:]} request"}})
        with chat.lock:
            chat.paths.append(self.path)
            chat.attempts[prompt] += 1
            attempt = chat.attempts[prompt]
            chat.headers.append({k.lower(): v for k, v in self.headers.items()})
            chat.bodies.append(request)
            chat.in_flight += 1
            chat.max_in_flight = max(chat.max_in_flight, chat.in_flight)
        try:
            if chat.latency_s:
                time.sleep(chat.latency_s)
            self._respond(chat, request, prompt, attempt, chat_api=path == "/v1/chat/completions")
        finally:
            with chat.lock:
                chat.in_flight -= 1

    def _respond(self, chat: ChatServer, request: dict, prompt: str, attempt: int, chat_api: bool) -> None:
        found = _MARKER.search(prompt)
        kind, times = (found.group(1), found.group(2)) if found else (chat.behaviour, None)
        failing = times is None or attempt <= int(times)
        if kind == "malformed":
            return self._send(200, b"<html>upstream hiccup</html>")
        if kind == "nochoices":
            return self._send(200, {"id": "chatcmpl-x", "object": "chat.completion"})
        if kind == "slow" and chat.stopping.wait(chat.slow_s):
            self.close_connection = True  # shutting down: hang up without an answer
            return
        if kind == "429" and failing:
            return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
        if kind == "500" and failing:
            return self._send(500, {"error": {"message": "internal error"}})
        if kind == "400":  # echoes the Authorization header, as a careless proxy might: clients must redact
            auth = self.headers.get("Authorization")
            echo = f" (authorization: {auth})" if auth else ""
            error = {"message": f"invalid request{echo}", "type": "invalid_request_error"}
            return self._send(400, {"error": error})
        answer = chat.answer(prompt)
        n_in, n_out = len(prompt.split()), len(answer.split())
        choice: dict[str, Any]
        if chat_api:
            obj, choice = "chat.completion", {"message": {"role": "assistant", "content": answer}}
        else:
            obj, choice = "text_completion", {"text": answer}
        reply = {
            "id": f"cmpl-{attempt}",
            "object": obj,
            "created": int(time.time()),
            "model": request.get("model", ""),
            "choices": [{"index": 0, **choice, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        }
        if kind == "nousage":
            del reply["usage"]
        self._send(200, reply)

    def _send(self, status: int, body: dict | bytes, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up is expected here, not a failure


@contextmanager
def serve(
    behaviour: str = "good",
    latency_s: float = 0.0,
    *,
    answer: Callable[[str], str] = default_answer,
    slow_s: float = 1.0,
    models: Sequence[str] = ("base",),
) -> Iterator[ChatServer]:
    """Run the server on a free port until the block exits. `latency_s` is added to every request;
    `behaviour` is the marker name (without brackets) for prompts that carry none; `models` is what
    GET /v1/models lists."""
    chat = ChatServer("", answer, behaviour, latency_s, slow_s, models=tuple(models))
    handler = type("Handler", (_Handler,), {"chat": chat})
    server = _Server(("127.0.0.1", 0), handler)
    chat.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield chat
    finally:
        chat.stopping.set()  # wakes [slow] handlers
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
