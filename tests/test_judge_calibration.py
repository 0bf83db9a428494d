"""The built-in judge's pairwise calibration (`harness.builtin.judge_calibration`): the fitted bias
removes a verdict prior that depends on neither answer, and only pairwise calls of the judge take it."""

import json
import random

import pytest
import torch

from harness.builtin.judge_calibration import CALIBRATION, _figures, fit_bias, pairwise_bias, verdict_tokens
from harness.builtin.shipped import SHIPPED

FLIP = {"A": "B", "B": "A", "tie": "tie"}


def _judged(prior, n=600, seed=0):
    """Log-probabilities of a judge that sees the right verdict (a margin of evidence) through noise,
    plus a `prior` over (A, B, tie) that depends on neither answer; pairs in both orders."""
    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        label = rng.choice(["A", "tie", "tie"])  # as on the bench: more ties than wins
        for want in (label, FLIP[label]):
            logits = [
                rng.gauss(0, 1.0) + p + (2.0 if v == want else 0.0)
                for v, p in zip(("A", "B", "tie"), prior, strict=True)
            ]
            rows.append(torch.log_softmax(torch.tensor(logits), -1).tolist())
            labels.append(want)
    return rows, labels


def test_the_fitted_bias_removes_a_planted_verdict_prior():
    prior = [0.0, 1.2, -0.6]  # says "B" too often and "tie" too rarely
    rows, labels = _judged(prior)
    bias = fit_bias(rows, labels)
    assert bias[0] == 0.0
    assert bias[1] == pytest.approx(-1.2, abs=0.3) and bias[2] == pytest.approx(0.6, abs=0.3)
    before, after = _figures(rows, labels, [0.0] * 3), _figures(rows, labels, bias)
    assert after["position_consistency"] > before["position_consistency"] + 0.1
    assert after["agreement"] > before["agreement"]
    # an unbiased judge gets (almost) no bias: the calibration set's many ties do not become a prior
    fair = fit_bias(*_judged([0.0, 0.0, 0.0], seed=1))
    assert max(map(abs, fair)) < 0.25


def test_pairwise_bias_reads_the_judge_folder(tmp_path):
    assert pairwise_bias(tmp_path) == ()
    (tmp_path / CALIBRATION).write_text(json.dumps({"pairwise_logit_bias": {"5": 0.0, "7": -0.5, "9": 0.25}}))
    assert pairwise_bias(tmp_path) == ((7, -0.5), (9, 0.25))  # a zero bias is no bias


def test_the_shipped_calibration_is_on_the_shipped_judges_verdict_tokens():
    from transformers import AutoTokenizer

    folder = SHIPPED / "judge"
    record = json.loads((folder / CALIBRATION).read_text())
    tokens = verdict_tokens(AutoTokenizer.from_pretrained(folder))
    assert [int(t) for t in record["pairwise_logit_bias"]] == tokens
    assert len(set(tokens)) == 3  # three verdicts, three first tokens
    assert record["after"]["position_consistency"] >= record["before"]["position_consistency"]


def test_only_pairwise_calls_of_an_engine_judge_take_its_bias(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.builtin.basemodel import train_tokenizer
    from harness.engines import HFEngine
    from harness.run.judge_backend import EngineJudge

    texts = [f"Answer A: {w} Answer B: {v}" for w in ("red", "blue", "green") for v in ("one", "two")] * 20
    tok = train_tokenizer(texts, 120)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    target = tok(" B", add_special_tokens=False)["input_ids"][0]
    judge = EngineJudge(HFEngine(str(tmp_path)), None, 2, pairwise_bias=((target, 100.0),))
    prompts = ["Answer A: red Answer B: two", "Answer A: blue Answer B: one"]
    forced = tok.decode([target, target]).strip()
    assert {r.text for r in judge.complete(prompts, mode="pairwise")} == {forced}
    assert all(r.text != forced for r in judge.complete(prompts))  # a grade call: no bias
