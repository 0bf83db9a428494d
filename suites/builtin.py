"""The built-in domain: a fictional organisation no pretrained model can know.

`builtin_suite(seed)` generates, deterministically, the corpus, test questions and training sets of
"Halvard Quell Instruments": product prices, warranties and factories, customer plans' return
windows, support desks, and the sections of its regulatory code.

Every fact gets one passage and three question wordings. Wording 0 is the *training* wording (SFT
pairs, preference pairs); the test question uses wording 1 or 2, a paraphrase. Facts are split by
fact into two slices: ``trained`` facts appear in the fine-tuning data; ``corpus_only`` facts appear
only in the corpus, so only retrieval can supply them.

`reading_pool(seed)` generates facts of the same kinds about *other* organisations with disjoint
names. The built-in base model learns the language and how to answer from a context on that pool,
so it knows nothing about the domain's facts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from suites.schema import Passage, PreferencePair, QAPair, Question, Suite, TrainingSets

GENERATOR_VERSION = "builtin-v1"  # bump when the generated text changes: it is part of cache keys

DOMAIN_ORG = "Halvard Quell Instruments"
DOMAIN_CODE = "Quell Consumer Code"
POOL_ORGS = ("Brennet Marrow Labs", "Ostry Vale Works", "Kelda Fenn Systems", "Tarrow Lisk Goods")
POOL_CODES = ("Marrow Trade Rules", "Vale Safety Charter", "Fenn Service Act", "Lisk Market Code")

_ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "w",
    "z",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
_CODAS = ["n", "r", "l", "s", "x", "th", "m", "nd", "rk"]
_FIRST = [
    "Ada",
    "Bram",
    "Cora",
    "Dev",
    "Elin",
    "Finn",
    "Greta",
    "Hugo",
    "Ines",
    "Joss",
    "Kira",
    "Lars",
    "Mina",
    "Nils",
    "Orla",
    "Pavel",
    "Quin",
    "Rosa",
    "Soren",
    "Tova",
    "Ulla",
    "Vik",
    "Wren",
    "Yara",
    "Zane",
    "Ilse",
    "Otto",
    "Maren",
    "Tobin",
    "Sela",
]
_KINDS = (
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


@dataclass(frozen=True)
class Fact:
    id: str
    category: str
    passage: str
    wordings: tuple[str, str, str]
    answers: tuple[str, ...]
    wrong: str  # a plausible wrong answer of the same kind


class _Names:
    """Unique made-up names from syllables; `taken` is shared so two generators never collide."""

    def __init__(self, rng: random.Random, taken: set[str]):
        self.rng, self.taken = rng, taken

    def _word(self, syllables: int) -> str:
        r = self.rng
        parts = [r.choice(_ONSETS) + r.choice(_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + r.choice(_CODAS)).capitalize()

    def unique(self, make) -> str:
        for _ in range(10_000):
            name = make()
            if name not in self.taken:
                self.taken.add(name)
                return name
        raise RuntimeError("name space exhausted")

    def product(self) -> str:
        return self.unique(
            lambda: f"{self._word(2)} {self.rng.choice('ABCDKMRSTVX')}{self.rng.randint(2, 99)}"
        )

    def city(self) -> str:
        return self.unique(lambda: self._word(2) + self.rng.choice(["ford", "haven", "by", "mere", "wick"]))

    def person(self) -> str:
        return self.unique(lambda: f"{self.rng.choice(_FIRST)} {self._word(2)}")


def _facts(
    rng: random.Random,
    names: _Names,
    org: str,
    code: str,
    prefix: str,
    scale: int,
    values: _Names | None = None,
) -> list[Fact]:
    """Facts about one organisation; `scale` products, scale//2 plans, desks and 1.2*scale sections.

    `rng`/`names` choose the structure (products, plans, desks, topics); `values` (default: the same
    stream) chooses the answers (prices, months, days, cities, people, sections). Drawing values from
    another stream gives the same questions with new answers.
    """
    facts: list[Fact] = []
    values = values or names
    vr = values.rng

    def add(category, passage, wordings, answers, wrong):
        facts.append(Fact(f"{prefix}-{len(facts):04d}", category, passage, wordings, answers, wrong))

    for _ in range(scale):
        p, kind = names.product(), rng.choice(_KINDS)
        price, wrong_price = vr.sample(range(19, 2999), 2)
        add(
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
        months, wrong_months = vr.sample(range(3, 61), 2)
        add(
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
        add(
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
    plans = [f"{w} {t}" for w in _PLAN_WORDS for t in _PLAN_TIERS]
    for plan in rng.sample(plans, scale // 2):
        days, wrong_days = vr.sample(range(7, 91), 2)
        add(
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
    desks = [f"{site} {d}" for d in _DEPTS for site in _DEPT_SITES]
    for desk in rng.sample(desks, scale // 2):
        person, wrong_person = values.person(), values.person()
        add(
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
    topics = [f"{a} {n}" for a in _TOPIC_ADJ for n in _TOPIC_NOUN]
    sections = [f"{a}.{b}" for a in range(1, 13) for b in range(1, 21)]
    for topic in rng.sample(topics, scale * 6 // 5):
        sec, wrong_sec = vr.sample(sections, 2)
        add(
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
    return facts


def _domain_facts(seed: int, scale: int) -> tuple[list[Fact], set[str]]:
    rng = random.Random(seed)
    taken: set[str] = set()
    return _facts(rng, _Names(rng, taken), DOMAIN_ORG, DOMAIN_CODE, "hq", scale), taken


def builtin_suite(seed: int = 7, *, scale: int = 40, corpus_only_fraction: float = 0.3) -> Suite:
    """The built-in domain suite. `scale` 40 gives 240 facts, passages and test questions."""
    facts, _ = _domain_facts(seed, scale)
    rng = random.Random(seed + 1)
    # Split by fact, stratified by category, so every category has both slices.
    corpus_only: set[str] = set()
    for category in sorted({f.category for f in facts}):
        ids = [f.id for f in facts if f.category == category]
        corpus_only.update(rng.sample(ids, round(len(ids) * corpus_only_fraction)))
    passages = tuple(Passage(f"p-{f.id}", f.passage, source=DOMAIN_ORG) for f in facts)
    questions = tuple(
        Question(
            id=f"q-{f.id}",
            text=f.wordings[rng.choice((1, 2))],
            answers=f.answers,
            gold_passage_ids=(f"p-{f.id}",),
            category=f.category,
            slice="corpus_only" if f.id in corpus_only else "trained",
        )
        for f in facts
    )
    trained = [f for f in facts if f.id not in corpus_only]
    training = TrainingSets(
        sft=tuple(
            QAPair(f.wordings[0], f.answers[0], fact_id=f.id, passage_ids=(f"p-{f.id}",)) for f in trained
        ),
        preferences=tuple(
            PreferencePair(f.wordings[0], f.answers[0], f.wrong, fact_id=f.id) for f in trained
        ),
        # Continued pre-training reads the documents of trained facts only: corpus_only stays unseen.
        documents=tuple(f.passage for f in trained),
        # The retriever may learn every passage of the corpus (as retrievers are trained on synthetic
        # queries over their corpus), in the training wording only: no test wording is ever used.
        retrieval=tuple((f.wordings[0], f.passage) for f in facts),
    )
    return Suite(f"builtin-{GENERATOR_VERSION}-s{seed}", passages, questions, training)


_ORG_SUFFIXES = ("Labs", "Works", "Systems", "Goods", "Devices", "Instruments", "Supply", "Industries")
_CODE_KINDS = (
    "Trade Rules",
    "Safety Charter",
    "Service Act",
    "Market Code",
    "Consumer Code",
    "Retail Statute",
)


def _pool_orgs(names: _Names, structure: int) -> list[tuple[str, str]]:
    """The pool's organisations and their codes: the four fixed ones, or (`structure` > 0) four
    made-up ones, never the domain's."""
    if structure == 0:
        return list(zip(POOL_ORGS, POOL_CODES))
    out = []
    for _ in POOL_ORGS:
        org = names.unique(lambda: f"{names._word(1)} {names._word(1)} {names.rng.choice(_ORG_SUFFIXES)}")
        code = f"{org.split()[1]} {names.rng.choice(_CODE_KINDS)}"
        if org == DOMAIN_ORG or code == DOMAIN_CODE:  # the syllables could make them; never the domain's
            return _pool_orgs(names, structure)
        out.append((org, code))
    return out


def reading_pool(
    seed: int = 7, *, scale: int = 40, domain_scale: int = 40, draw: int = 0, structure: int = 0
) -> list[Fact]:
    """Facts about other organisations, with names disjoint from the domain's (generated at
    `domain_scale`): the base model's reading-comprehension curriculum.

    Every `draw` keeps the pool's questions and passages' structure but draws new answers, so a
    model trained on many draws can only answer by reading the passage, not by memorising. Every
    `structure` above 0 draws new organisations, codes, products, plans, desks and topics as well, so
    a model trained on many can read about names it has never seen (the domain's, for one).
    """
    _, taken = _domain_facts(seed, domain_scale)
    rng = random.Random(seed + 1000) if structure == 0 else random.Random(f"{seed}-structure-{structure}")
    names = _Names(rng, taken)
    values = _Names(random.Random(f"{seed}-values-{draw}"), set(taken))
    facts: list[Fact] = []
    for i, (org, code) in enumerate(_pool_orgs(names, structure)):
        facts += _facts(rng, names, org, code, f"pool{i}", scale, values)
    return facts
