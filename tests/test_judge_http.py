"""The OpenAI-compatible judge client against a real HTTP server on 127.0.0.1 (tests/openai_server.py)."""

import asyncio
import socket
import threading
import time

import pytest

from judges.http import HTTPJudge, Reply
from tests.openai_server import default_answer, serve

CANARY = "sk-canary-123"


def judge(url: str, **options) -> HTTPJudge:
    return HTTPJudge(url, "judge-model", **({"backoff_s": 0.01, "timeout_s": 5.0} | options))


def test_good_answers_come_back_in_prompt_order_with_concurrency():
    prompts = [f"question {i}" for i in range(40)]
    done = []
    with serve(latency_s=0.01) as server:
        replies = judge(server.url, concurrency=8).complete(prompts, progress=done.append)
    assert replies == [Reply(default_answer(p), None, 1) for p in prompts]
    assert sum(done) == len(prompts)
    assert server.max_in_flight > 1


def test_request_is_a_chat_completion_with_one_user_message():
    with serve(answer=lambda prompt: "yes") as server:
        [reply] = judge(server.url + "/", max_tokens=7).complete(["Is the sky blue?"])
    assert reply == Reply("yes", None, 1)
    assert server.bodies == [
        {
            "model": "judge-model",
            "messages": [{"role": "user", "content": "Is the sky blue?"}],
            "max_tokens": 7,
            "temperature": 0.0,
        }
    ]
    assert server.headers[0]["content-type"] == "application/json"
    assert "authorization" not in server.headers[0]  # no key, no header


def test_rate_limited_twice_succeeds_on_third_attempt():
    with serve() as server:
        [reply] = judge(server.url).complete(["q [429x2]"])
    assert reply == Reply(default_answer("q [429x2]"), None, 3)
    assert server.attempts["q [429x2]"] == 3


def test_retry_after_zero_overrides_a_long_backoff():
    with serve() as server:
        t0 = time.perf_counter()
        [reply] = judge(server.url, backoff_s=5.0).complete(["q [429x2]"])
    assert reply.attempts == 3 and time.perf_counter() - t0 < 2.0


def test_server_error_twice_then_success():
    with serve() as server:
        [reply] = judge(server.url).complete(["q [500x2]"])
    assert reply == Reply(default_answer("q [500x2]"), None, 3)


def test_persistent_server_error_fails_after_every_attempt():
    with serve() as server:
        [reply] = judge(server.url, max_retries=3).complete(["q [500]"])
    assert reply == Reply(None, "HTTP 500 after 4 attempts", 4)
    assert server.attempts["q [500]"] == 4


def test_bad_request_fails_at_once():
    with serve() as server:
        [reply] = judge(server.url).complete(["q [400]"])
    assert reply.text is None and reply.attempts == 1
    assert reply.error.startswith("HTTP 400: ") and "invalid request" in reply.error
    assert server.attempts["q [400]"] == 1


def test_slow_server_times_out_and_counts_attempts():
    with serve(slow_s=1.0) as server:
        t0 = time.perf_counter()
        [reply] = judge(server.url, timeout_s=0.2, max_retries=1).complete(["q [slow]"])
        elapsed = time.perf_counter() - t0
        assert server.attempts["q [slow]"] == 2
    assert reply == Reply(None, "timed out after 2 attempts", 2)
    assert elapsed < 1.0


@pytest.mark.parametrize("marker", ["[malformed]", "[nochoices]"])
def test_malformed_bodies_are_retried_then_fail(marker):
    prompt = f"q {marker}"
    with serve() as server:
        [reply] = judge(server.url, max_retries=2).complete([prompt])
    assert reply == Reply(None, "malformed response after 3 attempts", 3)
    assert server.attempts[prompt] == 3


def test_unreachable_server_fails_after_retries():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    [reply] = judge(f"http://127.0.0.1:{port}/v1", max_retries=1).complete(["q"])
    assert reply.text is None and reply.attempts == 2
    assert reply.error.startswith("connection error") and reply.error.endswith("after 2 attempts")


def test_at_most_concurrency_requests_in_flight():
    with serve(latency_s=0.1) as server:
        replies = judge(server.url, concurrency=4).complete([f"q{i}" for i in range(24)])
    assert all(r.text for r in replies)
    assert server.max_in_flight == 4


def test_api_key_is_sent_as_bearer_and_never_leaks():
    prompts = ["good", "q [400]", "q [500]", "q [malformed]", "q [slow]"]
    with serve(slow_s=1.0) as server:
        client = judge(server.url, api_key=CANARY, timeout_s=0.3, max_retries=1)
        replies = client.complete(prompts)
    assert {h["authorization"] for h in server.headers} == {f"Bearer {CANARY}"}
    assert replies[0].text and all(r.error for r in replies[1:])
    assert CANARY not in client.identity and CANARY not in repr(client)
    assert not any(CANARY in r.error for r in replies[1:])


def test_identity_names_server_model_and_decoding():
    client = HTTPJudge("http://h:1/v1/", "m", max_tokens=9, temperature=0.5)
    assert client.identity == "http:http://h:1/v1|m|max_tokens=9|temperature=0.5"


def test_mixed_batch_puts_every_reply_in_its_place():
    expected = {
        "a": "ok",
        "b [429x1]": "ok",
        "c [500x2]": "ok",
        "d [500]": "HTTP 500 after 3 attempts",
        "e [400]": "HTTP 400",
        "f [malformed]": "malformed response after 3 attempts",
        "g [nochoices]": "malformed response after 3 attempts",
        "h [slow]": "timed out after 3 attempts",
    }
    prompts = list(expected) * 3
    prompts = [f"{p} #{i}" for i, p in enumerate(prompts)]
    done = []
    with serve(slow_s=1.0) as server:
        replies = judge(server.url, concurrency=6, timeout_s=0.3, max_retries=2).complete(
            prompts, progress=done.append
        )
    assert len(replies) == len(prompts) and sum(done) == len(prompts)
    for prompt, reply in zip(prompts, replies, strict=True):
        want = expected[prompt.rsplit(" #", 1)[0]]
        if want == "ok":
            assert reply.text == default_answer(prompt) and reply.error is None
        else:
            assert reply.text is None and reply.error.startswith(want)


def test_complete_works_from_a_thread_and_inside_a_running_loop():
    with serve() as server:
        client = judge(server.url)
        from_thread = []
        worker = threading.Thread(target=lambda: from_thread.extend(client.complete(["t"])))
        worker.start()
        worker.join()

        async def caller():
            return client.complete(["l"])

        in_loop = asyncio.run(caller())
    assert from_thread[0].text == default_answer("t")
    assert in_loop[0].text == default_answer("l")
