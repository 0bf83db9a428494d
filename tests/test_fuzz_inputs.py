"""Property-based fuzzing of what ragvft reads (issue #37): configs and suites, mutated at random from
valid ones (wrong types, booleans for numbers, unknown and deleted keys, huge, negative and non-finite
numbers, odd Unicode, broken YAML and JSON text, bytes that are not UTF-8). Whatever the input, the
loaders return a valid result or raise `InputError`, one printable line naming the file: never any
other exception, which the command line would show as a traceback. In process and derandomised: the
same examples on every run, at least 200 for each entry point."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.cache import digest
from core.errors import InputError
from tests import fuzz
from tests.conftest import BASE, DROP, MICRO, MICRO_CONFIG, RAG, micro

settings.register_profile(
    "fuzz",
    derandomize=True,  # the same examples every run: a failure in CI is one to reproduce, not luck
    deadline=None,
    database=None,  # nothing written into the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")

# Values a hostile file puts anywhere
ODD_TEXT = ["", " ", "\t", "~nobody-here/x", "a" * 300, "../" * 40, "/", "x\x00y", "inf", "-inf", "nan",
            "true", "yes", "3", "-1", "1e999", "0x10", "bm25", "em", "auto", "sft", "base", "\u202e", "\ufeff",
            "\U0001f600", "\ud800", "a\udc80b", "é" * 5, "null", "~", "- a", "{a: 1}"]
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**32 - 1, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.booleans(), st.none(), NUMBERS, st.sampled_from(ODD_TEXT), st.text(max_size=12))
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "kind", "path", "name", "seed", "1"]), SCALARS, max_size=2),
)
KEYS = st.one_of(st.sampled_from(["extra", "Name", "seed", "k", "kind", "path", "builtin", "\ud800", "é"]),
                 st.integers(-3, 3), st.booleans(), st.none())


def mutate(doc: Any, data: st.DataObject) -> Any:
    return fuzz.mutate(doc, data, VALUES, KEYS)


def mutated(bases: list[Any], data: st.DataObject) -> Any:
    doc = copy.deepcopy(data.draw(st.sampled_from(bases)))
    for _ in range(data.draw(st.integers(1, 3))):
        doc = mutate(doc, data)
    return doc


def refused_well(e: InputError, path: Path) -> None:
    """An input error as the command line prints it: one line, printable, naming the file."""
    text = str(e)
    assert "\n" not in text and text.startswith(str(path)), text
    text.encode("utf-8")  # the terminal can write it: no half of a UTF-16 pair in it
    event(f"refused: {e.message[:40]}")  # what the examples reach: --hypothesis-show-statistics


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- configs ---------------------------------------------------------------------------------------

CONFIGS = [
    MICRO,
    micro(
        training={"sft": {"epochs": 2, "learning_rate": 0.01, "batch_size": 8}, "seeds": [1, 2]},
        variants=[BASE, RAG, {"name": "ft", "adapter": "sft"}, {"name": "ft_rag", "adapter": "sft", "retriever": "bm25"}],
        gate={"rules": [{"variant": "rag", "metric": "em", "margin": 0.1, "floor": 0.0}]},
        leakage={"threshold": 0.8, "exclude": True},
        generation={"fewshot": 1, "ray": {"workers": 1}},
        suite={"chunking": {"words": 50, "overlap": 10}},
        retrievers={"hy": {"kind": "hybrid", "of": ["bm25", "dense"]}, "dense": {"kind": "dense"}},
    ),
    micro(
        generation={"engine": "vllm", "vllm": {"max_lora_rank": 16, "gpu_memory_utilization": 0.5}},
        judge={"http": {"base_url": "http://127.0.0.1:1/v1", "model": "m", "timeout_s": 5.0}, "modes": ["grade"]},
        forgetting={"tasks": ["builtin_reading"], "limit": 10},
        synth={"passages": 10, "round_trip_f1": 0.5, "types": ["person", "numeric"]},
        decision={"metric": "f1"},
        labels={"exclude_invalid": True},
        model={"dtype": "float32", "chat_template": False, "system_prompt": None},
    ),
    micro(
        model={"builtin": DROP, "path": "some/model", "revision": "main", "trust_remote_code": False},
        generation={"engine": "openai", "openai": {"base_url": "http://127.0.0.1:1/v1", "concurrency": 2}},
        training={"profile": "model", "dpo": {"epochs": 1.0, "beta": 0.1}},
        variants=[BASE, RAG, {"name": "dpo", "adapter": "dpo"}],
    ),
]


def test_the_fuzzed_configs_start_valid(folder):
    from harness.config import load_config

    for i, config in enumerate(CONFIGS):
        path = folder / f"valid-{i}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        load_config(path)


def load_or_refuse(path: Path) -> None:
    from harness.config import load_config

    try:
        config = load_config(path)
    except InputError as e:
        refused_well(e, path)
        return
    digest(config.manifest_dump())  # what a run keys and records it by: every value writable
    event("valid")


@settings(FUZZ, max_examples=300)
@given(st.data())
def test_mutated_config_data(folder, data):
    doc = mutated(CONFIGS, data)
    try:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=data.draw(st.booleans()))
    except yaml.YAMLError:  # a value YAML cannot write: nothing to read
        return
    path = folder / "data.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    load_or_refuse(path)


# YAML's own syntax, and what a careless edit or a hostile file puts in a config's text
SNIPPETS = [":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "&a [*a]", "!!python/object/apply:os.system ['true']",
            "!!int x", "!!float y", "!!binary z", "!!timestamp 2020-99-99", "<<: *a\n", "? ", "---\n", "...\n",
            "%YAML 1.1\n", "\t", "\n", "  ", "#", "|", ">", "'", '"', "\\", "@", "`", "\x00", "\x85", "\u2028",
            "\ufeff", "\ud800", '"\\ud800"', '"\\U00110000"', "9" * 5000, "true", "yes", "null", ".inf", ".nan",
            "seed: 1\n", "name: x\n", "k: true\n", "[" * 300, "{a: " * 300]


@settings(FUZZ, max_examples=300)
@given(st.data())
def test_mutated_config_text(folder, data):
    text = MICRO_CONFIG
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 20)))
        text = text[:start] + data.draw(st.sampled_from(["", *SNIPPETS])) + text[end:]
    raw = text.encode("utf-8", "surrogatepass")
    if data.draw(st.integers(0, 4)) == 0:  # and bytes that are no UTF-8 at all
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + raw[at:]
    path = folder / "text.yaml"
    path.write_bytes(raw)
    load_or_refuse(path)


# --- suites ----------------------------------------------------------------------------------------

CORPUS = [{"id": "p1", "text": "The sky is blue."}, {"id": "p2", "text": "Grass is green.", "source": "s"}]
QUESTIONS = [
    {"id": "q1", "question": "Sky?", "answers": ["blue"], "gold_passage_ids": ["p1"], "category": "c"},
    {"id": "q2", "question": "Grass?", "answers": ["green", "Green"]},
]
# What a hostile line of JSON holds instead of a row
LINES = [b"", b"   ", b"[1, 2]", b"42", b'"text"', b"null", b"{", b'{"id": 1e999}', b'{"id": ' + b"9" * 5000 + b"}",
         b"[" * 100_000, b'{"id": "\\ud800"}', b'{"\\udc00": 1}', b"\xff\xfe", b'{"id": "caf\xe9"}', b"\x00",
         b'{"id": "a", "id": "b"}', b'{"question": NaN}', b'{"question": Infinity}']


def jsonl_bytes(rows: list[Any], data: st.DataObject) -> bytes:
    """Rows as JSON Lines, ASCII-escaped or not, with a hostile line or two put in."""
    ascii_only = data.draw(st.booleans())
    lines = []
    for row in rows:
        try:
            lines.append(json.dumps(row, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError):  # a key JSON cannot write (None is written as "null")
            lines.append(b"{}")
    for _ in range(data.draw(st.integers(0, 2))):
        lines.insert(data.draw(st.integers(0, len(lines))), data.draw(st.sampled_from(LINES)))
    return b"\n".join(lines) + b"\n"


def suite_or_refusal(load: Any, path: Path) -> None:
    """The loader's suite (which a cache key can be made of: every string encodable) or its refusal."""
    try:
        suite = load()
    except InputError as e:
        refused_well(e, path.parent)
        return
    suite.digest()
    event("valid")


@settings(FUZZ, max_examples=250)
@given(st.data())
def test_mutated_jsonl_suite(folder, data):
    from suites.jsonl import load_jsonl_suite

    corpus, questions = folder / "corpus.jsonl", folder / "questions.jsonl"
    rows = mutated([[CORPUS, QUESTIONS]], data)
    rows = rows if isinstance(rows, list) and len(rows) == 2 else [CORPUS, rows]
    for file, part in ((corpus, rows[0]), (questions, rows[1])):
        file.write_bytes(jsonl_bytes(part if isinstance(part, list) else [part], data))
    suite_or_refusal(lambda: load_jsonl_suite(corpus, questions), corpus)


SQUAD = {
    "data": [
        {
            "title": "t",
            "paragraphs": [
                {
                    "context": "The sky is blue. Grass is green.",
                    "document_id": "d1",
                    "qas": [
                        {"id": "1", "question": "Sky?", "answers": [{"text": "blue", "answer_start": 11}]},
                        {"id": 2, "question": "Sea?", "answers": [], "is_impossible": True},
                    ],
                },
            ],
        }
    ]
}
PUBMEDQA = {
    "101": {"QUESTION": "Does it work?", "CONTEXTS": ["It works.", "Mostly."], "final_decision": "yes"},
    "102": {"QUESTION": "Is it safe?", "CONTEXTS": ["Unclear."], "final_decision": "maybe", "LABELS": ["A"]},
}


def json_text(doc: Any, data: st.DataObject) -> bytes:
    """`doc` as JSON, ASCII-escaped or not, sometimes cut short."""
    try:
        raw = json.dumps(doc, ensure_ascii=data.draw(st.booleans())).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        raw = b"{}"
    if data.draw(st.integers(0, 5)) == 0:
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    return raw


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_mutated_squad_file(folder, data):
    from suites.squad import load_squad

    path = folder / "squad.json"
    path.write_bytes(json_text(mutated([SQUAD], data), data))
    suite_or_refusal(lambda: load_squad(path, words=5, overlap=1), path)


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_mutated_pubmedqa_file(folder, data):
    from suites.pubmedqa import load_pubmedqa

    path, ids = folder / "ori_pqal.json", folder / "test_ground_truth.json"
    records = mutated([PUBMEDQA], data)
    path.write_bytes(json_text(records, data))
    ids.write_bytes(json_text(mutated([{"101": "yes"}], data), data))
    test_ids = ids if data.draw(st.booleans()) else None
    chunking = data.draw(st.sampled_from([None, (3, 1)]))
    suite_or_refusal(lambda: load_pubmedqa(path, test_ids=test_ids, chunking=chunking), path)


PAIRS = [
    {"question": "Sky?", "chosen": "Blue.", "rejected": "Green."},
    {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."},
    {
        "chosen": "\n\nHuman: A?\n\nAssistant: B.\n\nHuman: C?\n\nAssistant: D.",
        "rejected": "\n\nHuman: A?\n\nAssistant: B.\n\nHuman: C?\n\nAssistant: E.",
    },
]


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_mutated_preference_pairs(folder, data):
    from suites.preferences import load_hh_rlhf

    path = folder / "pairs.jsonl"
    rows = mutated([PAIRS], data)
    path.write_bytes(jsonl_bytes(rows if isinstance(rows, list) else [rows], data))
    test = data.draw(st.integers(1, 3))
    suite_or_refusal(lambda: load_hh_rlhf(path, test=test, max_words=data.draw(st.sampled_from([None, 3, 50]))), path)
