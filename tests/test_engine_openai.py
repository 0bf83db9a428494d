"""The OpenAI-compatible engine against a real HTTP server on 127.0.0.1 (tests/openai_server.py)."""

import asyncio
import socket

import pytest

from harness.engines.openai import OpenAIEngine, OpenAIOptions
from harness.engines.types import Completion, Decoding, Request
from tests.conftest import MICRO, assert_input_error, cli_bench
from tests.openai_server import default_answer, serve

CANARY = "sk-canary-engine-456"
FAST = {"backoff_s": 0.01, "timeout_s": 5.0}


def engine(*urls: str, **options) -> OpenAIEngine:
    return OpenAIEngine("some/base", options=OpenAIOptions(base_url=list(urls), **(FAST | options)))


def closed_port_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_prompt_request_body_and_model_names():
    with serve(answer=lambda p: "four") as server:
        e = engine(server.url + "/", models={"base": "qwen", "sft": "qwen-sft"})
        e.add_adapter("a1", "/adapters/sft", label="sft")
        e.add_adapter("a2", "/adapters/dpo")  # no label: its name, unmapped
        decoding = Decoding(max_new_tokens=7, stop=("\n", "END"))
        out = e.generate(
            [Request("2+2=", decoding=decoding), Request("3+1=", adapter="a1"), Request("x", adapter="a2")]
        )
    assert [c.text for c in out] == ["four"] * 3
    assert server.paths == ["/v1/completions"] * 3
    by_prompt = {b["prompt"]: b for b in server.bodies}
    assert by_prompt["2+2="] == {
        "model": "qwen",
        "prompt": "2+2=",
        "max_tokens": 7,
        "temperature": 0,
        "top_p": 1,
        "n": 1,
        "stop": ["END"],  # a whitespace stop is cut here, after the answer's leading whitespace
    }
    assert by_prompt["3+1="]["model"] == "qwen-sft" and "stop" not in by_prompt["3+1="]
    assert by_prompt["x"]["model"] == "a2"


def test_chat_request_goes_to_chat_completions_and_empty_stop_is_omitted():
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"})
    with serve(answer=lambda p: "  line one\nline two  ") as server:
        [c] = engine(server.url).generate([Request(messages=messages, decoding=Decoding(9, stop=()))])
    assert server.paths == ["/v1/chat/completions"]
    assert server.bodies == [
        {"model": "base", "messages": list(messages), "max_tokens": 9, "temperature": 0, "top_p": 1, "n": 1}
    ]
    assert c.text == "line one\nline two"  # no stop: not cut, only stripped


def test_stop_strings_cut_the_text_even_when_the_server_ignores_them():
    answers = {"a": " Paris\nLyon", "b": "yes END no\nmaybe", "c": "no stop here ", "d": "\n\nRome\nx"}
    with serve(answer=lambda p: answers[p]) as server:
        out = engine(server.url).generate(
            [Request(p, decoding=Decoding(16, stop=("END", "\n"))) for p in answers]
        )
    assert all("stop" in b for b in server.bodies)
    assert [c.text for c in out] == ["Paris", "yes", "no stop here", "Rome"]  # a leading newline skipped


def test_order_preserved_over_two_base_urls_with_concurrency():
    prompts = [f"question {i}" for i in range(40)]
    done = []
    with serve(latency_s=0.02) as one, serve(latency_s=0.02) as two:
        e = engine(one.url, two.url, concurrency=3)
        out = e.generate([Request(p, decoding=Decoding(32, stop=())) for p in prompts], progress=done.append)
    assert [c.text for c in out] == [default_answer(p) for p in prompts]
    assert sum(done) == len(prompts)
    assert len(one.bodies) > 0 and len(two.bodies) > 0 and len(one.bodies) + len(two.bodies) == 40
    assert one.max_in_flight > 1 and two.max_in_flight > 1
    assert max(one.max_in_flight, two.max_in_flight) <= 3


def test_usage_and_latency_fill_the_completion():
    with serve(answer=lambda p: "a b c", latency_s=0.05) as server:
        with_usage, without = engine(server.url).generate([Request("one two"), Request("x [nousage]")])
    assert (with_usage.text, with_usage.tokens_in, with_usage.tokens_out) == ("a b c", 2, 3)
    assert 0.05 <= with_usage.latency_s < 2.0
    assert (without.tokens_in, without.tokens_out) == (0, 0)


def test_server_error_is_retried_then_succeeds():
    with serve() as server:
        [c] = engine(server.url, max_retries=3).generate(
            [Request("q [500x2]", decoding=Decoding(8, stop=()))]
        )
    assert c.text == default_answer("q [500x2]")
    assert server.attempts["q [500x2]"] == 3


def test_persistent_failure_raises_one_line_after_every_attempt():
    with serve() as server:
        e = engine(server.url, max_retries=2)
        with pytest.raises(RuntimeError) as info:
            e.generate([Request("fine"), Request("q [500]"), Request("q [malformed]")])
    message = str(info.value)
    assert "\n" not in message and message.startswith("2 of 3 requests")
    assert "HTTP 500 after 3 attempts" in message and server.url in message
    assert server.attempts["q [500]"] == 3 and server.attempts["q [malformed]"] == 3


def test_bad_request_fails_at_once_without_the_api_key(monkeypatch):
    monkeypatch.setenv("RAGVFT_TEST_KEY", CANARY)
    with serve() as server:
        e = engine(server.url, api_key_env="RAGVFT_TEST_KEY", max_retries=3)
        with pytest.raises(RuntimeError) as info:
            e.generate([Request("good"), Request("q [400]")])
    message = str(info.value)
    assert "\n" not in message and message.startswith("1 of 2 requests")
    assert "HTTP 400" in message and "invalid request" in message
    assert CANARY not in message and "<api key>" in message  # the server echoed it; redacted
    assert server.attempts["q [400]"] == 1


def test_api_key_is_sent_as_bearer_and_never_leaks(monkeypatch):
    monkeypatch.setenv("RAGVFT_TEST_KEY", CANARY)
    unreachable = closed_port_url()
    with serve(models=("base",)) as server:
        e = engine(server.url, api_key_env="RAGVFT_TEST_KEY", max_retries=0)
        e.generate([Request("hello")])
        e.check({"base": None})
        with pytest.raises(RuntimeError) as info:
            e.generate([Request("q [400]")])
    assert {h["authorization"] for h in server.headers} == {f"Bearer {CANARY}"}
    assert server.paths.count("/v1/models") == 1
    for text in (str(e.identity), repr(e), str(vars(e)), str(info.value)):
        assert CANARY not in text
    down = engine(unreachable, api_key_env="RAGVFT_TEST_KEY", max_retries=0)
    assert all(CANARY not in line for line in down.check({"base": None}))


def test_no_api_key_no_header():
    with serve() as server:
        engine(server.url).generate([Request("hello")])
    assert "authorization" not in server.headers[0]


def test_missing_api_key_env_var(monkeypatch):
    monkeypatch.delenv("RAGVFT_NO_SUCH_KEY", raising=False)
    from harness.engines.types import EngineUnavailable  # the run turns it into one line, exit 2

    with pytest.raises(EngineUnavailable) as info:
        engine("http://127.0.0.1:9/v1", api_key_env="RAGVFT_NO_SUCH_KEY")
    assert "RAGVFT_NO_SUCH_KEY" in str(info.value) and "\n" not in str(info.value)


def test_check_names_missing_models_and_unreachable_urls():
    unreachable = closed_port_url()
    variants = {"base": None, "sft": "sft", "dpo": "dpo", "kto-s8": "kto-s8"}
    with serve(models=("qwen", "dpo", "kto-v2")) as a, serve(models=("qwen", "kto-v2")) as b:
        fine = engine(a.url, b.url, models={"base": "qwen", "kto-s8": "kto-v2"})
        assert fine.check({"base": None, "kto-s8": "kto-s8"}) == []
        problems = fine.check(variants)
        e = engine(a.url, unreachable, models={"base": "qwen"}, max_retries=1)
        with_dead = e.check({"base": None, "dpo": "dpo"})
    assert problems == [
        (
            f"variant 'sft' needs the model 'sft', which {a.url} does not serve (it serves: dpo, kto-v2, qwen), "
            f"nor {b.url} (it serves: kto-v2, qwen)"
        ),
        f"variant 'dpo' needs the model 'dpo', which {b.url} does not serve (it serves: kto-v2, qwen)",
    ]
    [line] = with_dead
    assert line.startswith(f"cannot list the models of {unreachable}: connection error")
    assert line.endswith("after 2 attempts")


def test_unknown_adapter_fails_before_any_request():
    with serve() as server:
        e = engine(server.url)
        e.add_adapter("known", "/x")
        with pytest.raises(KeyError, match="'other'"):
            e.generate([Request("a", adapter="known"), Request("b", adapter="other")])
    assert server.bodies == []


def test_attributes_and_empty_batch():
    e = engine("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1", concurrency=16, models={"base": "qwen"})
    assert e.mixes_adapters is False  # one served model at a time (see OpenAIEngine)
    assert e.chunk_size == 256 and engine("http://h:1/v1", concurrency=2).chunk_size == 64
    assert e.identity == {"engine": "openai", "dtype": "server", "device": "server", "served_base": "qwen"}
    assert e.generate([]) == []  # nothing to send: no connection to the closed ports


def test_generate_inside_a_running_loop():
    with serve() as server:
        e = engine(server.url)

        async def caller():
            return e.generate([Request("l", decoding=Decoding(8, stop=()))])

        out = asyncio.run(caller())
    assert out == [Completion(default_answer("l"), 1, 3, out[0].latency_s)]


def test_a_bench_whose_api_key_variable_is_unset_stops_with_one_line_and_exit_2(micro_config, monkeypatch):
    monkeypatch.delenv("RAGVFT_NO_SUCH_KEY", raising=False)
    openai = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "RAGVFT_NO_SUCH_KEY"}
    out = cli_bench(micro_config.parent, MICRO | {"generation": {"engine": "openai", "openai": openai}})
    assert_input_error(  # past progress bars, and nothing half-written
        out, "RAGVFT_NO_SUCH_KEY is not set", "generation.engine", bars=True, no_run_in=micro_config.parent
    )
