"""What the built-in judge learns from: (prompt, reply) rows in the exact prompts it will be asked,
every answer labelled by rule.

The first judge learned a shortcut: its wrong answers were mostly in the reference's own form (another
value, a near miss) and its right answers mostly restatements, so it called the form, not the value
(the gold answer itself "incorrect", every time). Here every right answer has a wrong twin in the same
form (the same template, another value), so only comparing the value with the reference pays:
- the gold answer as given, restyled, and restated in other words (`harness.builtin.restate`'s
  training family), each beside the same form holding a wrong value (another fact's, the fact's
  plausible wrong one, a near miss: a value off by one, two digits swapped, a name cut short);
- wrong answers of another kind (another kind of fact's answer, the question's words cut anywhere, a
  word cut from its start, no answer): what the variants write when they fail;
- a model's own answers to the question (closed-book and reading the passage: real output, echoes and
  all), each beside an answer of the other label;
- pairwise: every (right, wrong) pair in both orders ("A", "B"), and as many ties (two right answers,
  or two wrong ones), so "A", "B" and "tie" are a third each;
- ragas' faithfulness (statements, then whether the passage supports each) and answer relevancy (a
  question for the answer) in ragas' own prompts, their JSON replies written by rule.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

from harness.builtin.restate import NUMBER, answer_value, restatements
from judges.exact import normalize_answer
from judges.llm_judge import grade_prompt, pairwise_prompt

RIGHT, WRONG = "correct 5", "incorrect 1"
ROWS_VERSION = "judge-rows-v5"  # bump when these rows change

NONCOMMITTAL = ("I don't know", "not sure", "unknown", "no idea", "I cannot say")
# what a question about each kind of answer asks (answer relevancy: the question an answer answers)
_ASKS = {
    "pricing": "How much does it cost?",
    "warranty": "How long is the warranty?",
    "manufacturing": "Where is it made?",
    "policy": "How many days is the return window?",
    "support": "Who runs the desk?",
    "regulation": "Which section covers the rules?",
}


def is_right(category: str, answers: Sequence[str], answer: str) -> bool:
    """The rule that labels an answer: exact match after normalisation, or a training restatement."""
    accepted = {normalize_answer(a) for a in (*answers, *restatements(category, list(answers), "train"))}
    return normalize_answer(answer) in accepted


def supported(answer: str, context: str) -> bool:
    """Whether `context` states `answer` (the rule behind the NLI verdicts): every number of the answer
    is a number of the context; an answer without numbers, every word of it is a word of the context."""
    numbers = NUMBER.findall(answer)
    if numbers:
        return set(numbers) <= set(NUMBER.findall(context))
    words = normalize_answer(answer).split()
    return bool(words) and set(words) <= set(normalize_answer(context).split())


def _reform(form: str, gold: str, other: str) -> str:
    """`form` (written around the gold answer) holding `other`'s value instead."""
    old, new = answer_value(gold), answer_value(other)
    return form.replace(old, new, 1) if old in form else form.replace(gold, other, 1)


def _styles(rng: random.Random) -> Callable[[str], str]:
    return rng.choice([str.lower, str.upper, lambda s: "the " + s, lambda s: s + ".", str.capitalize])


def twins(category: str, golds: Sequence[str], wrongs: Sequence[str], rng: random.Random) -> list[tuple]:
    """(right, wrong) answers in the same form, for each wrong value: the gold answers as given,
    restyled and restated (training templates), the wrong value in their place."""
    golds = list(golds)
    out = []
    for w in wrongs:
        forms = [(g, _reform(g, golds[0], w) if g != golds[0] else w) for g in golds]
        style = _styles(rng)
        forms.append((style(golds[0]), style(w)))
        forms += list(zip(restatements(category, golds), restatements(category, [w]), strict=True))
        out += [(r, x) for r, x in forms if is_right(category, golds, r) and not is_right(category, golds, x)]
    return list(dict.fromkeys(out))


def off_kind(
    question: str, category: str, elsewhere: Sequence[tuple[str, str]], rng: random.Random
) -> list[str]:
    """Wrong answers of another kind, as the bench's variants write them when they fail (measured on
    the default bench: the judge of twins alone accepted 236 of 542 such answers): another kind of
    fact's answer (a month count for a price), the question's own words cut anywhere (an echo, a name
    cut short), a word cut from its start, and no answer at all. `elsewhere` holds (category, answer)
    of other facts."""
    words = question.rstrip("?").split()
    start = rng.randrange(len(words))
    echo = " ".join(words[start : start + rng.randint(1, 4)])
    if rng.random() < 0.5 and len(echo) > 4:
        echo = echo[: rng.randint(3, len(echo) - 1)]
    others = [a for c, a in elsewhere if c != category]
    out = [echo, rng.choice(["", " ", "?"])]
    if others:
        other = rng.choice(others)
        out.append(other)
        out.append(other[rng.randint(1, max(1, len(other) // 2)) :])
    return out


def fact_rows(
    question: str,
    category: str,
    golds: Sequence[str],
    wrongs: Sequence[str],
    model_answers: Sequence[str],
    rng: random.Random,
    *,
    pairs: int = 3,
    foreign: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """Grade and pairwise rows for one question: balanced verdicts, "A" / "B" / "tie" a third each.
    `foreign` are wrong answers of another kind (`off_kind`), each beside a right one."""
    found = twins(category, golds, wrongs, rng)
    if not found:
        return []
    chosen = rng.sample(found, min(pairs, len(found)))
    rights = list(dict.fromkeys(r for r, _ in found))
    for answer in dict.fromkeys(a for a in foreign if not is_right(category, golds, a)):
        chosen.append((rng.choice(rights), answer))
    for answer in dict.fromkeys(a for a in model_answers if a):
        r, w = rng.choice(found)  # a model's answer beside one of the other label
        chosen.append((answer, w) if is_right(category, golds, answer) else (r, answer))
    wrongs_all = list(dict.fromkeys(w for _, w in chosen if not is_right(category, golds, w)))
    rows = []
    for i, (r, w) in enumerate(chosen):
        rows += [(grade_prompt(question, golds, r), RIGHT), (grade_prompt(question, golds, w), WRONG)]
        rows += [(pairwise_prompt(question, golds, r, w), "A"), (pairwise_prompt(question, golds, w, r), "B")]
        # a tie of two right answers or of two wrong ones
        same, pool = (r, rights) if i % 2 == 0 else (w, wrongs_all)
        others = [a for a in pool if a != same]
        if not others:
            same, pool = (w, wrongs_all) if same == r else (r, rights)
            others = [a for a in pool if a != same]
        if others:  # one order a tie (a third of the pairwise rows)
            a, b = rng.sample([same, rng.choice(others)], 2)
            rows.append((pairwise_prompt(question, golds, a, b), "tie"))
    return rows


def _statement(question: str, answer: str) -> str:
    return f"{question} {answer}."


def ragas_rows(
    prompts: dict,
    question: str,
    answer: str,
    passage: str,
    distractor: str,
    rng: random.Random,
    *,
    kind: str | None,
) -> list[tuple[str, str]]:
    """ragas' faithfulness and answer relevancy prompts for one answer, with the replies they ask for:
    the answer as one statement; whether the context (its own passage, or another) states it; the
    question its kind of answer answers (`kind`: the category whose form it has, None when unknown;
    noncommittal when it is no answer)."""
    rows = []
    if answer in NONCOMMITTAL:
        rows.append((prompts["relevance"](answer), _json({"question": "What is asked?", "noncommittal": 1})))
        return rows
    statement = _statement(question, answer)
    rows.append((prompts["statements"](question, answer), _json({"statements": [statement]})))
    context = passage if rng.random() < 0.6 else distractor  # one passage, as the default's rag reads
    verdict = int(supported(answer, context))
    reason = "Stated in the context." if verdict else "Not stated in the context."
    rows.append(
        (
            prompts["nli"](context, [statement]),
            _json({"statements": [{"statement": statement, "reason": reason, "verdict": verdict}]}),
        )
    )
    if kind in _ASKS:
        rows.append((prompts["relevance"](answer), _json({"question": _ASKS[kind], "noncommittal": 0})))
    return rows


def _json(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)
