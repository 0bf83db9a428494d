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


def restatements(category: str, answers: tuple[str, ...] | list[str], family: str = "train") -> list[str]:
    """The gold answer in other words, for one of the built-in domain's categories (any other
    category: none). `family` is "train" or "planted"."""
    gold = answers[0]
    v = answer_value(gold)
    t = family == "train"
    if category == "pricing":
        n = int(v)
        if t:
            return [f"USD {n}", f"{n} US dollars", f"${n}.00", f"a price of {n} dollars", f"it costs ${n}"]
        return [
            f"{n} USD",
            f"US$ {n}",
            f"costs {n} dollars",
            f"{n} dollars (USD)",
            f"the list price, {n} dollars",
        ]
    if category in ("warranty", "policy"):
        unit = "month" if category == "warranty" else "day"
        if t:
            return [
                f"{v}-{unit}",
                f"{v} {unit}s of cover",
                f"a {v} {unit} period",
                f"{unit}s: {v}",
                f"{v} {unit}s in all",
            ]
        return [
            f"{v}-{unit} period",
            f"{v} {unit}s from purchase",
            f"a period of {v} {unit}s",
            f"{unit}s, {v}",
        ]
    if category == "manufacturing":
        if t:
            return [
                f"in {gold}",
                f"the city of {gold}",
                f"the {gold} plant",
                f"made in {gold}",
                f"{gold} (city)",
            ]
        return [
            f"at the plant in {gold}",
            f"assembled in {gold}",
            f"{gold}, where it is built",
            f"city: {gold}",
        ]
    if category == "support":
        first, _, last = gold.partition(" ")
        if t:
            return [f"{last}, {first}", f"{gold} runs it", f"the lead is {gold}", f"{gold} (desk lead)"]
        return [
            f"{last} {first}",
            f"it is run by {gold}",
            f"{gold}, who handles escalations",
            f"{last}, {first} runs it",
        ]
    if category == "regulation":
        s = answer_value(gold)
        if t:
            return [
                f"§{s}",
                f"Sec. {s}",
                f"section {s} of the code",
                f"{s} (section)",
                f"rules in section {s}",
            ]
        return [f"§ {s}", f"Section {s} of the code", f"the rules are in section {s}", f"sect. {s}"]
    return []


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
