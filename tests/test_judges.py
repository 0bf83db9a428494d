"""LLM-as-judge: parsing, retry-then-undetermined, both-order pairwise, reliability, and a whole
bench judged over HTTP by a real OpenAI-compatible server on 127.0.0.1 (grade, pairwise, ragas)."""

import json
import re

import pytest

from judges.exact import normalize_answer
from judges.llm_judge import (
    Preference,
    ask,
    combine_orders,
    grade_prompt,
    parse_grade,
    parse_preference,
)
from judges.reliability import reliability
from tests.conftest import write_config
from tests.openai_server import serve


def test_grade_parses_json_inside_prose_and_fences_and_rejects_bad_values():
    g = parse_grade('Sure.\n```json\n{"verdict": "Correct", "score": 4, "rationale": "close"}\n```')
    assert (g.verdict, g.score, g.rationale) == ("correct", 4, "close")
    assert parse_grade('{"verdict": "correct", "score": 9}') is None  # off the rubric
    assert parse_grade('{"verdict": "maybe", "score": 3}') is None
    assert parse_grade('{"verdict": "correct"}') is None
    assert parse_grade("correct, 5/5").score == 5  # the compact form the built-in judge writes
    assert parse_grade("incorrect") is None and parse_grade("it is correct 5") is None
    assert parse_preference('x {"winner": "b"} y').winner == "B"
    assert parse_preference('{"winner": "C"}') is None
    assert parse_preference(" tie").winner == "tie" and parse_preference("Because") is None
    assert parse_preference("a tie, I'd say") is None


def test_inconsistent_orders_are_a_tie_and_consistent_ones_count():
    a, b, tie = Preference("A", ""), Preference("B", ""), Preference("tie", "")
    assert combine_orders(a, b) == ("win", True)  # the variant first, then second: it won both
    assert combine_orders(b, a) == ("loss", True)
    assert combine_orders(a, a) == ("tie", False)  # always the first position: position bias
    assert combine_orders(tie, tie) == ("tie", True)
    assert combine_orders(a, None) == (None, None)


def _grader(prompt: str) -> str:
    """A strict judge played by the test server: correct when the answer equals the reference."""
    if "[garbage]" in prompt:
        return "I think it is fine."
    if "[late]" in prompt and "not a JSON object" not in prompt:
        return "let me think"  # parses only when asked again
    answer = re.search(r"\nAnswer: (.*)\nJSON:", prompt + "\nJSON:")
    reference = re.search(r"\nReference: (.*)\n", prompt)
    ok = answer and reference and normalize_answer(answer.group(1)) == normalize_answer(reference.group(1))
    return json.dumps(
        {"verdict": "correct" if ok else "incorrect", "score": 5 if ok else 1, "rationale": "r"}
    )


def test_unparseable_reply_is_asked_again_then_undetermined():
    from judges.http import HTTPJudge

    prompts = [
        grade_prompt("Q1?", ["blue"], "Blue"),
        grade_prompt("Q2?", ["blue"], "red [late]"),
        grade_prompt("Q3?", ["blue"], "blue [garbage]"),
        grade_prompt("Q4?", ["blue"], "blue [500]"),
    ]
    with serve(answer=_grader) as server:
        judge = HTTPJudge(server.url, "judge", backoff_s=0.01, max_retries=1)
        out = ask(lambda ps, first: [r.text for r in judge.complete(ps)], prompts, parse_grade)
    (g1, _, n1), (g2, _, n2), (g3, raw3, n3), (g4, raw4, _) = out
    assert g1.verdict == "correct" and n1 == 1
    assert g2.verdict == "incorrect" and n2 == 2  # right on the second asking
    assert g3 is None and n3 == 2 and raw3 == "I think it is fine."  # undetermined, not zero
    assert g4 is None and raw4 is None  # the call itself failed


def test_reliability_measures_kappa_consistency_and_length_bias():
    def row(q, em, f1, verdict, answer=None):
        scores = {"em": {"value": em}, "f1": {"value": f1}, "judge": {"value": verdict}}
        return {"question_id": q, "answer": answer or f"answer to {q}", "scores": scores}

    rows = [
        row("q1", 1.0, 1.0, 1.0),
        row("q2", 1.0, 1.0, 1.0),
        row("q3", 0.0, 0.0, 0.0),
        row("q4", 0.0, 0.0, 1.0),
    ]
    rows += [row("q5", 0.0, 0.5, 1.0), row("q6", 1.0, 1.0, None)]  # not decisive; undetermined
    from sklearn.metrics import cohen_kappa_score

    r = reliability(rows)["grade"]
    assert r["decisive_n"] == 4 and r["undetermined"] == 1
    # The same answer to q4 given by three more variants is one decision, not four (defect: kappa
    # pooled rows across variants, so an answer shared by many variants outweighed the others).
    assert reliability(rows + [row("q4", 0.0, 0.0, 1.0)] * 3)["grade"]["kappa_with_em"] == pytest.approx(0.5)
    assert r["agreement_with_em"] == 0.75
    assert r["kappa_with_em"] == pytest.approx(cohen_kappa_score([1, 1, 0, 0], [1, 1, 0, 1]))  # 0.5
    assert r["kappa_with_em"] == pytest.approx(0.5)

    def pair(result, consistent, mine, theirs):
        return {"answer": mine, "against_answer": theirs, "result": result, "consistent": consistent}

    pairs = [
        pair("win", True, "a long answer here", "short"),
        pair("loss", True, "short", "a longer one"),
        pair("tie", False, "x", "y"),
        pair(None, None, "x", "y"),
        pair("tie", None, "same", "same") | {"identical": True},
    ]
    p = reliability([{"scores": {}, "judge": {"pairwise": x}} for x in pairs])["pairwise"]
    assert p["position_consistency"] == pytest.approx(2 / 3)
    assert p["undetermined"] == 1 and p["identical_answers"] == 1
    assert p["longer_answer_won"] == 1.0  # both decided pairs went to the longer answer
    assert p["length_diff_words"] == pytest.approx((3 + 2) / 2)


def test_pairwise_agreement_with_exact_match_counts_only_pairs_it_is_sure_of():
    from judges.reliability import reliability

    def row(variant, q, em, f1, pairwise=None):
        r = {
            "variant": variant,
            "question_id": q,
            "answer": f"{variant} {q}",
            "scores": {"em": {"value": em}, "f1": {"value": f1}},
        }
        if pairwise:
            r["judge"] = {
                "pairwise": {"against": "base", "answer": r["answer"], "against_answer": "b"} | pairwise
            }
        return r

    rows = [row("base", q, 0.0, 0.0) for q in ("q1", "q2", "q3", "q4", "q5")]
    rows += [row("base", "q6", 0.0, 0.5)]  # a partial overlap: exact match is not sure
    rows += [
        row("sft", "q1", 1.0, 1.0, {"result": "win", "consistent": True}),  # right beats wrong: agrees
        row("sft", "q2", 1.0, 1.0, {"result": "tie", "consistent": True}),  # a tie where em separates
        row("sft", "q3", 0.0, 0.0, {"result": "tie", "consistent": True}),  # two wrong answers tie
        row("sft", "q4", 0.0, 0.0, {"result": "loss", "consistent": True}),  # a side taken: disagrees
        row("sft", "q5", 1.0, 1.0, {"result": None, "consistent": None}),  # undetermined: not counted
        row("sft", "q6", 1.0, 1.0, {"result": "win", "consistent": True}),  # base not decisive
        row("dpo", "q3", 0.0, 0.0, {"result": "tie", "consistent": None, "identical": True}),  # not asked
    ]
    p = reliability(rows)["pairwise"]
    assert (p["em_decisive_n"], p["em_separated_n"]) == (4, 2)
    assert p["agreement_with_em"] == pytest.approx(2 / 4)
    assert p["agreement_where_em_separates"] == pytest.approx(1 / 2)


def _ragas_and_grader(prompt: str) -> str:
    """The server plays a judge for ragvft's prompts and for ragas' (their JSON forms)."""
    if "JSON:" in prompt and "Reference:" in prompt:
        if "Answer A:" in prompt:
            a = re.search(r"\nAnswer A: (.*)\n", prompt).group(1)
            b = re.search(r"\nAnswer B: (.*)\n", prompt).group(1)
            la, lb = len(a.split()), len(b.split())  # a length-biased judge, in words as reliability counts
            winner = "A" if la > lb else "B" if lb > la else "tie"
            return json.dumps({"winner": winner, "rationale": "longer"})
        return _grader(prompt)
    data = json.loads(prompt.rsplit("input: ", 1)[-1].rsplit("Output:", 1)[0])
    if "Break down each sentence" in prompt:
        return json.dumps({"statements": [data["answer"]] if data["answer"] else []})
    if "judge the faithfulness" in prompt:
        ctx = data["context"].lower()
        return json.dumps(
            {
                "statements": [
                    {"statement": s, "reason": "r", "verdict": int(s.lower() in ctx)}
                    for s in data["statements"]
                ]
            }
        )
    if "context was useful" in prompt:
        return json.dumps({"reason": "r", "verdict": int(data["answer"].lower() in data["context"].lower())})
    if "attributed to the given context" in prompt:
        s = data["answer"]
        return json.dumps(
            {
                "classifications": [
                    {"statement": s, "reason": "r", "attributed": int(s.lower() in data["context"].lower())}
                ]
            }
        )
    if "Generate a question" in prompt:
        return json.dumps({"question": "what is it", "noncommittal": 0})
    return "unknown prompt"


RAGAS = [
    "faithfulness",
    "context_precision",
    "context_recall",
    "nonllm_context_precision",
    "nonllm_context_recall",
]


def _judged(url: str) -> dict:
    """The micro config's `judge` section: the HTTP judge at `url`, and ragas' metrics."""
    http = {"base_url": url, "model": "judge", "api_key_env": "RAGVFT_TEST_JUDGE_KEY", "concurrency": 4}
    return {"http": http | {"max_retries": 1}, "ragas": RAGAS}


def test_bench_judged_over_http_scores_every_variant_and_reports_reliability(micro_config, monkeypatch):
    from harness.config import load_config
    from harness.run import bench

    monkeypatch.setenv("RAGVFT_TEST_JUDGE_KEY", "sk-canary-judge-777")
    with serve(answer=_ragas_and_grader) as server:
        write_config(micro_config.parent, judge=_judged(server.url))
        result = bench(load_config(micro_config))
        asked = sum(server.attempts.values())
        assert all(h.get("authorization") == "Bearer sk-canary-judge-777" for h in server.headers)

        rows = result.rows
        for r in rows:
            verdict = r["scores"]["judge"]["value"]
            assert verdict == float(r["scores"]["em"]["value"])  # this judge is exact match itself
            if r["variant"] == "base":
                assert "pairwise" not in r["scores"]  # the baseline is not compared with itself
            else:
                assert r["scores"]["pairwise"]["value"] in (0.0, 0.5, 1.0)
            rag = r["retrieved_text"] is not None
            assert ("faithfulness" in r["scores"]) == rag  # ragas only where passages were read
        rel = result.summary["judge_reliability"]
        g = rel["grade"]
        assert g["decisive_n"] > 0 and g["agreement_with_em"] == 1.0 and g["undetermined"] == 0
        assert g["kappa_with_em"] in (1.0, None)  # None when exact match gave one class only
        p = rel["pairwise"]
        assert p["decided_n"] > 0 and p["longer_answer_won"] == 1.0  # the judge prefers length: seen
        assert p["position_consistency"] == 1.0  # a length rule does not depend on position
        faith = [r["scores"]["faithfulness"]["value"] for r in rows if "faithfulness" in r["scores"]]
        assert any(v is not None for v in faith)
        s = result.summary["variants"]
        assert s["rag"]["judge"]["n"] + s["rag"]["judge"]["undetermined"] == len(rows) // 2
        assert s["base"]["faithfulness"]["n"] == 0  # does not apply closed-book: not undetermined
        assert s["rag"]["nonllm_context_recall"]["n"] > 0

        # A rerun asks the judge nothing: every call is cached.
        again = bench(load_config(micro_config))
        assert sum(server.attempts.values()) == asked
        assert again.summary["judge_reliability"]["calls_made"] == 0
    for f in result.run_dir.iterdir():
        assert "sk-canary-judge-777" not in f.read_text(errors="replace")
    html = (result.run_dir / "report.html").read_text()
    assert 'id="judge"' in html and "Do not decide" not in html  # a judge that agrees: no warning


def test_builtin_judge_is_a_trained_adapter_whose_verdicts_are_reported(micro_config):
    """The embedded default's judge: a LoRA adapter trained with TRL on the suite's training facts,
    loaded like any model. A micro model judges poorly; what is proved is the path and the record."""
    from harness.config import load_config
    from harness.run import bench

    judge = {"builtin": {"epochs": 2, "lora_r": 4, "lora_alpha": 8}, "ragas": ["nonllm_context_recall"]}
    write_config(micro_config.parent, judge=judge)
    result = bench(load_config(micro_config))
    jr = result.summary["judge_reliability"]
    assert jr["judge"].startswith("builtin:judge:")
    # every row graded (asked now, or cached by another test's identical micro judge)
    assert jr["calls_made"] + jr["calls_cached"] >= len(result.rows) and jr["grade"]["n"] == len(result.rows)
    for r in result.rows:
        g = r["judge"]["grade"]
        assert g["raw"] is not None  # the model answered; parsed or undetermined, never zero by default
        assert (r["scores"]["judge"]["value"] is None) == ("verdict" not in g)
    assert result.manifest["judge"]["adapter"]["training"]["method"] == "judge"
    # The verdicts are the trained adapter's own replies: the same prompts through the engine with the
    # judge's adapter give the stored text, and the bare base replies otherwise (a constant judge, or a
    # judge whose adapter did not load, fails here).
    from harness.artifacts import resolve_model
    from harness.engines import Decoding, HFEngine, Request
    from judges.llm_judge import grade_prompt, retry_prompt

    engine = HFEngine(resolve_model(load_config(micro_config), {}).path, batch_size=16)
    engine.add_adapter("judge", result.manifest["judge"]["adapter"]["path"])
    sample = result.rows[:16]
    prompts = [grade_prompt(r["question"], r["gold_answers"], r["answer"]) for r in sample]
    # the stored reply is the first asking's, or the second's (with a reminder) when that did not parse
    prompts = [
        p if r["judge"]["grade"]["attempts"] == 1 else retry_prompt(p)
        for p, r in zip(prompts, sample, strict=True)
    ]
    decoding = Decoding(max_new_tokens=8, stop=())
    mine = [
        c.text for c in engine.generate([Request(p, adapter="judge", decoding=decoding) for p in prompts])
    ]
    assert mine == [r["judge"]["grade"]["raw"] for r in sample]
    bare = [c.text for c in engine.generate([Request(p, decoding=decoding) for p in prompts])]
    assert bare != mine
    kappa = jr["grade"]["kappa_with_em"]
    consistency = jr["pairwise"]["position_consistency"]
    from judges.reliability import MIN_KAPPA_WITH_EM, MIN_POSITION_CONSISTENCY

    weak = (kappa is not None and kappa < MIN_KAPPA_WITH_EM) or (
        consistency is not None and consistency < MIN_POSITION_CONSISTENCY
    )
    assert bool(jr["warnings"]) == weak
    assert ("Do not decide" in (result.run_dir / "report.html").read_text()) == weak


def _counting_engines(monkeypatch) -> list:
    """Swap the `hf` engine kind for one that records every engine it loads (real HF engines)."""
    from harness.engines import ENGINES, EngineKind, HFEngine

    made = []

    def make(*args, **kwargs):
        made.append(HFEngine(*args, **kwargs))
        return made[-1]

    monkeypatch.setitem(ENGINES, "hf", EngineKind(make, ENGINES["hf"].identity))
    return made


def _fresh_results(monkeypatch, cache_dir, tmp_path):
    """A cache whose models and adapters are the session's but whose results store is empty."""
    fresh = tmp_path / "cache"
    fresh.mkdir()
    for sub in ("models", "adapters"):
        (cache_dir / sub).mkdir(exist_ok=True)
        (fresh / sub).symlink_to(cache_dir / sub)
    monkeypatch.setenv("RAGVFT_CACHE", str(fresh))


def test_builtin_judge_runs_on_the_variants_loaded_base(micro_config, cache_dir, tmp_path, monkeypatch):
    """The built-in judge is an adapter on the base model: it is added to the engine that generated
    the variants' answers, so the base is loaded once for the whole run."""
    from harness.config import load_config
    from harness.run import bench

    _fresh_results(monkeypatch, cache_dir, tmp_path)
    made = _counting_engines(monkeypatch)
    write_config(micro_config.parent, judge={"builtin": {"epochs": 2, "lora_r": 4, "lora_alpha": 8}})
    result = bench(load_config(micro_config))
    assert (
        result.manifest["cache"]["generations_computed"] > 0
        and result.summary["judge_reliability"]["calls_made"] > 0
    )
    assert len(made) == 1  # one engine: the variants' generations and the judge's calls
    assert len(made[0].adapters) == 1  # the judge's adapter, beside the base the variants ran on


def test_hf_judge_on_another_model_gets_an_engine_of_its_own(
    micro_config, micro_base, cache_dir, tmp_path, monkeypatch
):
    """`judge.hf` names a model folder: it is loaded through the run's engine kind, once, and judges."""
    from harness.config import load_config
    from harness.run import bench

    _fresh_results(monkeypatch, cache_dir, tmp_path)
    made = _counting_engines(monkeypatch)
    folder = micro_base[2].path
    write_config(
        micro_config.parent, judge={"hf": {"path": str(folder), "max_new_tokens": 8}, "modes": ["grade"]}
    )
    result = bench(load_config(micro_config))
    jr = result.summary["judge_reliability"]
    assert result.manifest["judge"]["kind"] == "hf" and jr["judge"].startswith("hf:local:")
    assert jr["calls_made"] > 0 and jr["grade"]["n"] == len(result.rows)
    assert all("judge" in r["scores"] for r in result.rows)
    assert len(made) == 2  # the variants' engine and the judge's
