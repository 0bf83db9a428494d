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

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from suites.builtin_facts import (
    DESKS,
    KINDS,
    PLANS,
    TOPICS,
    FactText,
    policy_fact,
    product_facts,
    regulation_fact,
    support_fact,
)
from suites.schema import Passage, PreferencePair, QAPair, Question, Suite, TrainingSets

GENERATOR_VERSION = "builtin-v1"  # bump when the generated text changes: it is part of cache keys

DOMAIN_ORG = "Halvard Quell Instruments"
DOMAIN_CODE = "Quell Consumer Code"
POOL_ORGS = ("Brennet Marrow Labs", "Ostry Vale Works", "Kelda Fenn Systems", "Tarrow Lisk Goods")
POOL_CODES = ("Marrow Trade Rules", "Vale Safety Charter", "Fenn Service Act", "Lisk Market Code")
# The base model's reading pool is always generated with these: no suite setting enters its key, and
# every built-in domain avoids its names instead (`pool_names`).
POOL_SEED, POOL_DOMAIN_SCALE = 7, 40

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

    def __init__(self, rng: random.Random, taken: set[str]) -> None:
        self.rng, self.taken = rng, taken

    def _word(self, syllables: int) -> str:
        r = self.rng
        parts = [r.choice(_ONSETS) + r.choice(_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + r.choice(_CODAS)).capitalize()

    def unique(self, make: Callable[[], str]) -> str:
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
    another stream gives the same questions with new answers. The draws' order is the facts' (a seed
    gives the same facts): what each says is in `suites.builtin_facts`.
    """
    values = values or names
    texts: list[FactText] = []
    for _ in range(scale):
        texts += product_facts(names.product(), rng.choice(KINDS), org, values)
    for plan in rng.sample(PLANS, scale // 2):
        texts.append(policy_fact(plan, org, values.rng))
    for desk in rng.sample(DESKS, scale // 2):
        texts.append(support_fact(desk, org, values))
    for topic in rng.sample(TOPICS, scale * 6 // 5):
        texts.append(regulation_fact(topic, code, values.rng))
    return [Fact(f"{prefix}-{i:04d}", *text) for i, text in enumerate(texts)]


def _domain_facts(seed: int, scale: int, avoid: frozenset[str] = frozenset()) -> tuple[list[Fact], set[str]]:
    """The domain's facts and the names they use, never one of `avoid`'s."""
    rng = random.Random(seed)
    taken: set[str] = set(avoid)
    facts = _facts(rng, _Names(rng, taken), DOMAIN_ORG, DOMAIN_CODE, "hq", scale)
    return facts, taken - avoid


def builtin_suite(seed: int = 7, *, scale: int = 40, corpus_only_fraction: float = 0.3) -> Suite:
    """The built-in domain suite. `scale` 40 gives 240 facts, passages and test questions."""
    facts, _ = _domain_facts(seed, scale, avoid=pool_names())
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
        return list(zip(POOL_ORGS, POOL_CODES, strict=True))
    out = []
    for _ in POOL_ORGS:
        org = names.unique(lambda: f"{names._word(1)} {names._word(1)} {names.rng.choice(_ORG_SUFFIXES)}")
        code = f"{org.split()[1]} {names.rng.choice(_CODE_KINDS)}"
        if org == DOMAIN_ORG or code == DOMAIN_CODE:  # the syllables could make them; never the domain's
            return _pool_orgs(names, structure)
        out.append((org, code))
    return out


def reading_pool(
    seed: int = POOL_SEED,
    *,
    scale: int = 40,
    domain_scale: int = POOL_DOMAIN_SCALE,
    draw: int = 0,
    structure: int = 0,
) -> list[Fact]:
    """Facts about other organisations, with names disjoint from the domain's (generated at
    `domain_scale`): the base model's reading-comprehension curriculum.

    Every `draw` keeps the pool's questions and passages' structure but draws new answers, so a
    model trained on many draws can only answer by reading the passage, not by memorising. Every
    `structure` above 0 draws new organisations, codes, products, plans, desks and topics as well, so
    a model trained on many can read about names it has never seen (the domain's, for one).
    """
    return _pool(seed, scale, domain_scale, draw, structure)[0]


def _pool(seed: int, scale: int, domain_scale: int, draw: int, structure: int) -> tuple[list[Fact], set[str]]:
    """The pool's facts and the names its structure drew (not the domain's, not its answers')."""
    _, domain = _domain_facts(seed, domain_scale)
    taken = set(domain)
    rng = random.Random(seed + 1000) if structure == 0 else random.Random(f"{seed}-structure-{structure}")
    names = _Names(rng, taken)
    values = _Names(random.Random(f"{seed}-values-{draw}"), set(taken))
    facts: list[Fact] = []
    for i, (org, code) in enumerate(_pool_orgs(names, structure)):
        facts += _facts(rng, names, org, code, f"pool{i}", scale, values)
    return facts, taken - domain


@functools.cache
def pool_names() -> frozenset[str]:
    """The names of the built-in base model's reading pool (`POOL_SEED`, the default scales): every
    built-in domain, whatever its seed and scale, avoids them, so the one shipped base serves all."""
    return frozenset(_pool(POOL_SEED, 40, POOL_DOMAIN_SCALE, 0, 0)[1])
