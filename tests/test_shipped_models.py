"""The built-in models shipped with the project: the recipe rebuilds at tiny scale (so it cannot rot),
the shipped files are small, match the default recipe and load like a hub folder."""

import json
import re
from dataclasses import replace

from harness.builtin.basemodel import BUILD_RECORD, BaseModelSpec
from harness.builtin.shipped import SHIPPED, ship_base, shipped_base, shipped_identity

FIVE_MB = 5 * 1024 * 1024

TINY = BaseModelSpec(
    seed=5,
    pool_scale=3,
    domain_scale=4,
    hidden_size=32,
    intermediate_size=64,
    layers=1,
    heads=2,
    steps=40,
    batch_size=8,
    vocab_size=400,
    learning_rate=1e-2,
)


def test_the_recipe_rebuilds_at_tiny_scale_and_loads_like_a_hub_folder(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ship_base(TINY, tmp_path / "shipped", root=tmp_path / "cache", progress=False)
    assert shipped_base(TINY, tmp_path / "shipped") == folder
    assert shipped_base(replace(TINY, steps=41), tmp_path / "shipped") is None  # another recipe: not it

    record = json.loads((folder / BUILD_RECORD).read_text())
    assert record["recipe_key"] == TINY.recipe_key() and record["steps"] == 40
    assert 0.0 <= record["metrics"]["reading_em_heldout"] <= 1.0
    assert record["loss_curve"][-1]["loss"] < record["loss_curve"][0]["loss"]
    card = (folder / "README.md").read_text()
    assert TINY.recipe_key() in card and record["data_sha256"] in card and "| `steps` | 40 |" in card

    # the shards load exactly as a hub folder does, to the same weights the build trained
    cached = AutoModelForCausalLM.from_pretrained(
        tmp_path / "cache" / "models" / f"builtin-base-{TINY.key()}"
    )
    shipped = AutoModelForCausalLM.from_pretrained(folder)
    for (name, a), (_, b) in zip(cached.state_dict().items(), shipped.state_dict().items(), strict=True):
        assert a.equal(b), name
    assert AutoTokenizer.from_pretrained(folder).eos_token == "</s>"

    # the identity changes with the bytes (a rebuilt model invalidates adapters trained on the old)
    before = shipped_identity(folder)
    (folder / "config.json").write_text((folder / "config.json").read_text() + "\n")
    assert shipped_identity(folder) != before


def test_the_shipped_base_matches_the_default_recipe_and_every_file_is_small():
    folder = shipped_base(BaseModelSpec())
    assert folder is not None, "the default recipe changed: rebuild the shipped model with `make models`"
    files = [f for f in folder.iterdir() if f.is_file()]
    assert any(f.suffix == ".safetensors" for f in files)
    assert all(f.stat().st_size < FIVE_MB for f in files), [(f.name, f.stat().st_size) for f in files]
    record = json.loads((folder / BUILD_RECORD).read_text())
    assert record["metrics"]["reading_em_heldout"] >= 0.5  # it reads: the bench's rag variants need it
    assert folder.parent == SHIPPED


def test_the_judge_recipe_rebuilds_at_tiny_scale(tmp_path):
    from transformers import AutoModelForCausalLM

    from harness.builtin.judge_model import JudgeSpec, build_judge, judge_rows, shipped_judge, short_form

    base = ship_base(TINY, tmp_path / "shipped", root=tmp_path / "cache", progress=False)
    spec = JudgeSpec(draws=2, stride=1, short_steps=10, steps=15, batch_size=8)
    folder = build_judge(base, TINY, spec, tmp_path / "shipped", progress=False)
    assert shipped_judge(TINY, spec, tmp_path / "shipped") == folder
    assert shipped_judge(TINY, JudgeSpec(), tmp_path / "shipped") is None
    record = json.loads((folder / BUILD_RECORD).read_text())
    assert record["base_recipe_key"] == TINY.recipe_key() and record["model_answers"] > 0
    # the curriculum: steps on the reference and answers alone, then on the whole prompts
    first, last = record["loss_curve"][0], record["loss_curve"][-1]
    assert (first["phase"], last["phase"], last["step"], record["steps"]) == ("short", "whole", 25, 25)
    assert "built-in judge" in (folder / "README.md").read_text()
    AutoModelForCausalLM.from_pretrained(folder)

    rows = judge_rows(TINY, spec, {})
    cut = [short_form(p, r) for p, r in rows]
    assert all(c.startswith("Reference: ") and c.endswith("JSON:") for c, _ in cut if c is not None)
    assert all(
        c is None for (c, _), (p, _) in zip(cut, rows, strict=True) if not p.startswith(("Grade", "Which"))
    )
    _assert_the_parsers_read_every_reply(rows)
    _assert_wrong_answers_of_another_kind_and_numeric_forms(rows, spec)
    _assert_ragas_replies_and_no_test_question(rows)


def _assert_the_parsers_read_every_reply(rows: list[tuple[str, str]]) -> None:
    """Every grade and preference reply is what the parsers read: grades balanced, every pair in both
    orders, a third of them ties."""
    from judges.llm_judge import parse_grade, parse_preference

    grades = [parse_grade(r) for p, r in rows if p.startswith("Grade the answer")]
    prefs = [parse_preference(r) for p, r in rows if p.startswith("Which answer is better")]
    assert all(grades) and all(prefs)  # every reply is what the parsers read
    verdicts = [g.verdict for g in grades]
    assert verdicts.count("correct") == verdicts.count("incorrect") > 0  # balanced
    winners = [p.winner for p in prefs]
    assert winners.count("A") == winners.count("B") > 0  # every pair in both orders
    assert 0.8 * winners.count("A") <= winners.count("tie") <= winners.count("A")  # a third are ties


def _assert_wrong_answers_of_another_kind_and_numeric_forms(rows: list[tuple[str, str]], spec) -> None:
    from harness.builtin.judge_model import judge_rows
    from judges.llm_judge import parse_grade

    # wrong answers of another kind are there, always "incorrect": no answer, another kind's answer
    graded = {
        p.rsplit("Answer: ", 1)[-1].removesuffix("\nJSON:"): r for p, r in rows if p.startswith("Grade")
    }
    blank = [r for a, r in graded.items() if a in ("", " ", "?")]
    assert blank and set(blank) == {"incorrect 1"}
    assert any(a.endswith(" months") and r == "incorrect 1" for a, r in graded.items())  # a price asked
    # a numeric answer's form in the reference's family (its digits masked) comes with both labels:
    # only the value tells
    forms: dict[str, set] = {}
    for p, r in judge_rows(TINY, replace(spec, off_kind=0), {}):
        answer = p.rsplit("Answer: ", 1)[-1].removesuffix("\nJSON:")
        if p.startswith("Grade the answer") and re.search(r"\d", answer):
            forms.setdefault(re.sub(r"\d+", "#", answer), set()).add(parse_grade(r).verdict)
    both = sum(len(v) == 2 for v in forms.values())
    assert forms and both >= 0.8 * len(forms), (both, len(forms))


def _assert_ragas_replies_and_no_test_question(rows: list[tuple[str, str]]) -> None:
    from judges.llm_judge import reference_text
    from suites.builtin import builtin_suite

    # ragas' prompts, answered in JSON ragas' own parsers read
    ragas = [json.loads(r) for p, r in rows if not p.startswith(("Grade the answer", "Which answer"))]
    assert any("statements" in r and isinstance(r["statements"][0], str) for r in ragas)
    assert any(isinstance(r.get("statements", [None])[0], dict) for r in ragas)  # NLI verdicts
    assert any("noncommittal" in r for r in ragas)
    # never a test question of the domain the bench judges (its training questions, the SFT
    # wordings, are what the judge learns the domain's answers on)
    domain = builtin_suite(TINY.seed, scale=TINY.domain_scale)
    prompts_text = "\n".join(p for p, _ in rows)
    tests = [f"Question: {q.text}\nReference: {reference_text(q.answers)}" for q in domain.questions]
    trained = [f"Question: {p.question}\n" for p in domain.training.sft]
    assert tests and not any(t in prompts_text for t in tests)
    assert any(t in prompts_text for t in trained)


def test_restatements_mean_the_gold_and_near_misses_do_not():
    import random

    from harness.builtin.judge_rows import is_right
    from harness.builtin.restate import near_misses, planted, restatements
    from judges.exact import exact_match
    from suites.builtin import builtin_suite

    rng = random.Random(0)
    suite = builtin_suite(7, scale=8)
    kinds = set()
    for q in suite.questions:
        kinds.add(q.category)
        assert all(is_right(q.category, q.answers, a) for a in restatements(q.category, q.answers))
        shown = planted(q.category, q.answers)
        assert shown and all(exact_match(a, q.answers).value == 0 for a in shown)  # EM rejects every one
        assert set(shown).isdisjoint(restatements(q.category, q.answers))  # other templates than training
        misses = near_misses(q.category, q.answers, rng)
        assert misses and not any(is_right(q.category, q.answers, a) for a in misses)
    assert kinds == {"pricing", "warranty", "manufacturing", "policy", "support", "regulation"}


def test_the_shipped_judge_matches_the_default_recipe_and_the_shipped_base():
    from core.cache import folder_hash
    from harness.builtin.judge_model import shipped_judge

    base = shipped_base(BaseModelSpec())
    judge = shipped_judge(BaseModelSpec())
    assert base is not None and judge is not None, "rebuild the shipped models with `make models`"
    record = json.loads((judge / BUILD_RECORD).read_text())
    assert record["base_weights"] == folder_hash(base, 12)  # fine-tuned from these very weights
    files = [f for f in judge.iterdir() if f.is_file()]
    assert all(f.stat().st_size < FIVE_MB for f in files), [(f.name, f.stat().st_size) for f in files]
