"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

    with serve(answer=lambda prompt: "yes") as server:
        HTTPJudge(server.url, "judge").complete(["Is it? [500x2]"])
        server.attempts["Is it? [500x2]"]  # 3

What a request gets is chosen by a marker in its prompt (the last message's content), so one server
serves every case; a prompt without one gets `behaviour`, by default a good answer:

    [good]        200 with `answer(prompt)`
    [malformed]   200 whose body is not JSON
    [nochoices]   200 with JSON that has no "choices"
    [slow]        waits `slow_s`, then a good answer
    [429xN]       429 with Retry-After: 0 for the first N attempts, then a good answer
    [500xN]       500 for the first N attempts, then a good answer
    [500]         500 always
    [400]         400 always
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_MARKER = re.compile(r"\[(good|malformed|nochoices|slow|429|500|400)(?:x(\d+))?\]")


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do; every reply sets Content-Length
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    chat: ChatServer  # set on a subclass per server

    def log_message(self, *args):
        pass  # quiet: tests read the record instead

    def do_POST(self):
        chat = self.chat
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        try:
            request = json.loads(body)
            prompt = request["messages"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return self._send(400, {"error": {"message": "body is not a chat-completions request"}})
        with chat.lock:
            chat.attempts[prompt] += 1
            attempt = chat.attempts[prompt]
            chat.headers.append({k.lower(): v for k, v in self.headers.items()})
            chat.bodies.append(request)
            chat.in_flight += 1
            chat.max_in_flight = max(chat.max_in_flight, chat.in_flight)
        try:
            if chat.latency_s:
                time.sleep(chat.latency_s)
            self._respond(chat, request, prompt, attempt)
        finally:
            with chat.lock:
                chat.in_flight -= 1

    def _respond(self, chat: ChatServer, request: dict, prompt: str, attempt: int) -> None:
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
        if kind == "400":
            return self._send(400, {"error": {"message": "invalid request", "type": "invalid_request_error"}})
        answer = chat.answer(prompt)
        n_in, n_out = len(prompt.split()), len(answer.split())
        self._send(
            200,
            {
                "id": f"chatcmpl-{attempt}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", ""),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
            },
        )

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
) -> Iterator[ChatServer]:
    """Run the server on a free port until the block exits. `latency_s` is added to every request;
    `behaviour` is the marker name (without brackets) for prompts that carry none."""
    chat = ChatServer("", answer, behaviour, latency_s, slow_s)
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
