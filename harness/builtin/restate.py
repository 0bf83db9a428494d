"""Answers that mean the gold answer in other words (currency written out, units, word order), and
answers that look right but are not, for the built-in domain's answer kinds.

Two families of restatements: `train` teaches the built-in judge; `planted` is the set it is measured
on (`bench/judge_quality.py`), written with other templates so a judge that only learned the training
templates falls short. Exact match rejects most of both (a restatement it would accept is dropped from
the planted set).
"""

from __future__ import annotations

import random
import re

from judges.exact import normalize_answer

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def answer_value(answer: str) -> str:
    """An answer's first number, or the whole answer when it has none (a name, a city)."""
    m = NUMBER.search(answer)
    return m[0] if m else answer


# category -> (the "train" family's templates, the "planted" family's); fields: {gold} the gold answer,
# {v} its value (`answer_value`), {n} the value as a whole number (pricing), {unit} month or day,
# {first} and {last} a name's first word and the rest
_RESTATED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pricing": (
        ("USD {n}", "{n} US dollars", "${n}.00", "a price of {n} dollars", "it costs ${n}"),
        ("{n} USD", "US$ {n}", "costs {n} dollars", "{n} dollars (USD)", "the list price, {n} dollars"),
    ),
    "warranty": (
        ("{v}-{unit}", "{v} {unit}s of cover", "a {v} {unit} period", "{unit}s: {v}", "{v} {unit}s in all"),
        ("{v}-{unit} period", "{v} {unit}s from purchase", "a period of {v} {unit}s", "{unit}s, {v}"),
    ),
    "manufacturing": (
        ("in {gold}", "the city of {gold}", "the {gold} plant", "made in {gold}", "{gold} (city)"),
        ("at the plant in {gold}", "assembled in {gold}", "{gold}, where it is built", "city: {gold}"),
    ),
    "support": (
        ("{last}, {first}", "{gold} runs it", "the lead is {gold}", "{gold} (desk lead)"),
        ("{last} {first}", "it is run by {gold}", "{gold}, who handles escalations", "{last}, {first} runs it"),
    ),
    "regulation": (
        ("§{v}", "Sec. {v}", "section {v} of the code", "{v} (section)", "rules in section {v}"),
        ("§ {v}", "Section {v} of the code", "the rules are in section {v}", "sect. {v}"),
    ),
}
_RESTATED["policy"] = _RESTATED["warranty"]  # in days


def restatements(category: str, answers: tuple[str, ...] | list[str], family: str = "train") -> list[str]:
    """The gold answer in other words, for one of the built-in domain's categories (any other
    category: none). `family` is "train" or "planted"."""
    if category not in _RESTATED:
        return []
    gold = answers[0]
    v = answer_value(gold)
    first, _, last = gold.partition(" ")
    fields: dict[str, object] = {"gold": gold, "v": v, "first": first, "last": last}
    fields["unit"] = "month" if category == "warranty" else "day"
    if category == "pricing":
        fields["n"] = int(v)
    train, planted = _RESTATED[category]
    return [t.format(**fields) for t in (train if family == "train" else planted)]


def near_misses(category: str, answers: tuple[str, ...] | list[str], rng: random.Random) -> list[str]:
    """Answers that look like the gold but are wrong: the value off by a little, a name cut short or
    with a letter changed (what a weak reader writes)."""
    gold = answers[0]
    out = []
    m = NUMBER.search(gold)
    if m:
        num = m[0]
        if "." in num:
            a, b = num.split(".")
            other = f"{a}.{int(b) + rng.choice((1, 2, 3))}"
        else:
            other = str(int(num) + rng.choice((-3, -1, 1, 2, 10)))
        out.append(gold.replace(num, other, 1))
        digits = list(num.replace(".", ""))
        if len(digits) >= 2:
            i = rng.randrange(len(digits) - 1)
            digits[i], digits[i + 1] = digits[i + 1], digits[i]
            swapped = "".join(digits)
            if "." in num:
                swapped = swapped[: num.index(".")] + "." + swapped[num.index(".") :]
            if swapped != num:
                out.append(gold.replace(num, swapped, 1))
    else:
        if len(gold) > 4:
            out.append(gold[: max(3, len(gold) * 2 // 3)])  # cut short
            chars = list(gold)
            i = rng.randrange(1, len(chars))
            while chars[i] == " ":
                i = rng.randrange(1, len(chars))
            chars[i] = rng.choice([c for c in "aeiourstln" if c != chars[i].lower()])
            out.append("".join(chars))  # a letter changed
    golds = {normalize_answer(a) for a in answers}
    return [a for a in out if normalize_answer(a) not in golds]


def planted(category: str, answers: tuple[str, ...] | list[str]) -> list[str]:
    """The planted set for one question: restatements of the gold that exact match rejects."""
    golds = {normalize_answer(a) for a in answers}
    return [a for a in restatements(category, answers, "planted") if normalize_answer(a) not in golds]
