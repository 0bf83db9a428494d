"""What the built-in domain's facts say: the words they are made of and, per kind of fact, its passage,
three question wordings, answers and a plausible wrong answer (`suites.builtin` draws which product,
plan, desk or topic, and in which order).
"""

from __future__ import annotations

import random
from typing import Protocol

# category, passage, (training wording, two test wordings), answers, a plausible wrong answer
FactText = tuple[str, str, tuple[str, str, str], tuple[str, ...], str]


class Values(Protocol):
    """Where answers are drawn from: a random stream, and unique made-up cities and people."""

    rng: random.Random

    def city(self) -> str: ...

    def person(self) -> str: ...


KINDS = (
    "bench meter",
    "signal probe",
    "field scanner",
    "thermal logger",
    "pressure gauge",
    "flow sensor",
    "spectrum reader",
    "voltage tester",
)
_PLAN_WORDS = [
    "Amber",
    "Birch",
    "Cedar",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Indigo",
    "Juniper",
    "Kestrel",
    "Lumen",
]
_PLAN_TIERS = ["Basic", "Plus", "Prime", "Select"]
_DEPTS = (
    "billing",
    "repairs",
    "returns",
    "calibration",
    "shipping",
    "licensing",
    "warranty claims",
    "firmware",
    "training",
    "recalls",
    "trade accounts",
    "spare parts",
)
_DEPT_SITES = ("north", "south", "east", "west", "central")
_TOPIC_ADJ = (
    "battery",
    "customer data",
    "export",
    "packaging",
    "refund",
    "recall",
    "price",
    "safety",
    "calibration",
    "repair",
    "waste",
    "labelling",
)
_TOPIC_NOUN = (
    "disposal",
    "retention",
    "notices",
    "records",
    "audits",
    "disputes",
    "limits",
    "reporting",
    "complaints",
    "inspections",
)

PLANS = [f"{w} {t}" for w in _PLAN_WORDS for t in _PLAN_TIERS]
DESKS = [f"{site} {d}" for d in _DEPTS for site in _DEPT_SITES]
TOPICS = [f"{a} {n}" for a in _TOPIC_ADJ for n in _TOPIC_NOUN]
_SECTIONS = [f"{a}.{b}" for a in range(1, 13) for b in range(1, 21)]


def product_facts(p: str, kind: str, org: str, values: Values) -> list[FactText]:
    """A product's price, warranty and plant, drawn in that order."""
    price, wrong_price = values.rng.sample(range(19, 2999), 2)
    pricing = (
        "pricing",
        f"The {p} is a {kind} sold by {org}. Its list price is {price} dollars.",
        (
            f"How much does the {p} cost?",
            f"What is the price of the {p}?",
            f"What does {org} charge for the {p}?",
        ),
        (f"{price} dollars", f"${price}"),
        f"{wrong_price} dollars",
    )
    months, wrong_months = values.rng.sample(range(3, 61), 2)
    warranty = (
        "warranty",
        f"{org} covers the {p} with a warranty of {months} months from the day of purchase.",
        (
            f"How long is the warranty on the {p}?",
            f"For how many months is the {p} under warranty?",
            f"What warranty period does the {p} come with?",
        ),
        (f"{months} months",),
        f"{wrong_months} months",
    )
    city, wrong_city = values.city(), values.city()
    manufacturing = (
        "manufacturing",
        f"The {p} is assembled at the {org} plant in {city}.",
        (
            f"Where is the {p} made?",
            f"In which city is the {p} assembled?",
            f"Which city builds the {p}?",
        ),
        (city,),
        wrong_city,
    )
    return [pricing, warranty, manufacturing]


def policy_fact(plan: str, org: str, rng: random.Random) -> FactText:
    """A customer plan's return window."""
    days, wrong_days = rng.sample(range(7, 91), 2)
    return (
        "policy",
        f"Members on the {plan} plan of {org} may return a purchase within {days} days for a full refund.",
        (
            f"How many days do {plan} members have to return a purchase?",
            f"What is the return window on the {plan} plan?",
            f"Within how many days can a {plan} member get a refund?",
        ),
        (f"{days} days",),
        f"{wrong_days} days",
    )


def support_fact(desk: str, org: str, values: Values) -> FactText:
    """Who runs a support desk."""
    person, wrong_person = values.person(), values.person()
    return (
        "support",
        f"The {desk} desk at {org} is run by {person}, who handles every escalation.",
        (
            f"Who runs the {desk} desk?",
            f"Who is in charge of the {desk} desk?",
            f"Which person leads the {desk} desk?",
        ),
        (person,),
        wrong_person,
    )


def regulation_fact(topic: str, code: str, rng: random.Random) -> FactText:
    """The section of the organisation's code that sets the rules for a topic."""
    sec, wrong_sec = rng.sample(_SECTIONS, 2)
    return (
        "regulation",
        f"Section {sec} of the {code} sets the rules for {topic}.",
        (
            f"Which section of the {code} covers {topic}?",
            f"Where in the {code} are the rules for {topic}?",
            f"What section of the {code} deals with {topic}?",
        ),
        (f"Section {sec}", sec),
        f"Section {wrong_sec}",
    )
