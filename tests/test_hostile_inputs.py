"""Hostile input, through the command line (issue #37): every case below escaped as a traceback (exit 1)
or was taken silently. Each now ends in one line naming the file (the line and the field where there
are some), exit code 2, no traceback and no run written, at load: before any model is built."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cache import writer_tag
from tests.conftest import BASE, DROP, MICRO_CONFIG, assert_input_error, cli_bench, invoke, micro

RAGVFT = Path(sys.executable).parent / "ragvft"
JSONL_SUITE = {"builtin": DROP, "jsonl": {"corpus": "corpus.jsonl", "questions": "questions.jsonl"}}
CORPUS = '{"id": "p1", "text": "The sky is blue."}\n'
LONE = "What \ud800 is?"  # a lone surrogate: json.dumps writes it as the escape "\ud800"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> Path:
    """A cache of the test's own: nothing here reaches the session's (nor trains anything in it)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RAGVFT_CACHE", str(cache))
    return cache


def bench_text(tmp_path: Path, text: str | bytes) -> tuple[Path, object]:
    """`ragvft bench` on a config file holding `text` as written: (the file, CliRunner's result)."""
    path = tmp_path / "bench.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path, invoke("bench", "--config", path)


def nothing_built(tmp_path: Path) -> None:
    """No run written and no model built (the cache holds no models folder)."""
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "cache" / "models").exists()


# --- the config file -------------------------------------------------------------------------------


def test_config_naming_a_folder_through_the_installed_command(tmp_path):
    done = subprocess.run(
        [str(RAGVFT), "bench", "--config", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert_input_error(done, f"error: {tmp_path}: is a folder, not a config file")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_config_that_cannot_be_read(tmp_path, monkeypatch):
    path = tmp_path / "bench.yaml"
    path.write_text(MICRO_CONFIG)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: the refusal is the file system's, faked here
        real = Path.read_text

        def refused(self, *args, **kwargs):
            if self == path:
                raise PermissionError(13, "Permission denied", str(path))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", refused)
    result = invoke("bench", "--config", path)
    assert_input_error(result, f"error: {path}: cannot be read (Permission denied)", no_run_in=tmp_path)


def test_config_with_bytes_that_are_not_utf8(tmp_path):
    path, result = bench_text(tmp_path, MICRO_CONFIG.encode().replace(b"name: micro", b"name: caf\xe9"))
    assert_input_error(result, f"error: {path}: not UTF-8 text (byte 9)", no_run_in=tmp_path)


@pytest.mark.parametrize(
    "text, line",
    [("x: &a [*a]\n", 1), (MICRO_CONFIG + "loop: &b {again: *b}\n", 18)],
    ids=["the issue's", "a mapping inside itself"],
)
def test_recursive_yaml_alias(tmp_path, text, line):
    path, result = bench_text(tmp_path, text)
    assert_input_error(result, f"error: {path}:{line}: YAML alias inside what it names", no_run_in=tmp_path)


def test_yaml_aliases_that_expand_exponentially(tmp_path):
    """A "billion laughs": ten aliases of ten aliases of ... is refused before anything walks it."""
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    started = time.perf_counter()
    path, result = bench_text(tmp_path, "\n".join(rows) + "\n")
    assert_input_error(result, f"error: {path}:5: YAML aliases expand to more than 100,000 values")
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("text", ["- name: base\n- name: rag\n", "just words\n", "", "# nothing\n"])
def test_yaml_that_is_not_a_mapping(tmp_path, text):
    path, result = bench_text(tmp_path, text)
    assert_input_error(result, f"error: {path}:1: expected a mapping at the top level", no_run_in=tmp_path)


@pytest.mark.parametrize(
    "edit, where",
    [
        (("bootstrap_samples: 200", "bootstrap_samples: 200\nseed: 9"), "18: seed: duplicate key 'seed', on lines 2 and 18"),
        (("    k: 2", "    k: 2\n    k: 3"), "15: variants.1.k: duplicate key 'k', on lines 14 and 15"),
        (("{kind: bm25}", "{kind: bm25, kind: bm25}"), "9: retrievers.bm25.kind: duplicate key 'kind', twice on line 9"),
    ],
    ids=["top level", "in a list item", "in a flow mapping"],
)
def test_duplicate_yaml_key_names_both_lines(tmp_path, edit, where):
    path, result = bench_text(tmp_path, MICRO_CONFIG.replace(*edit))
    assert_input_error(result, f"error: {path}:{where}: give it once", no_run_in=tmp_path)


def test_a_key_merged_in_may_be_overridden(tmp_path):
    """`<<: *anchor` then the same key: YAML's override, no duplicate (the config then fails on
    its unknown keys, not on a duplicate)."""
    text = MICRO_CONFIG.replace("variants:", "common: &c {k: 2}\nvariants:").replace(
        "    k: 2", "    <<: *c\n    k: 3"
    )
    _, result = bench_text(tmp_path, text)
    assert_input_error(result, "common: unknown field", no_run_in=tmp_path)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"seed": True}, "2: seed"),
        ({"variants": [BASE, {"name": "rag", "retriever": "bm25", "k": True}]}, "25: variants.1.k"),
        ({"bootstrap_samples": False}, "30: bootstrap_samples"),
        ({"model": {"builtin": {"learning_rate": True}}}, "14: model.builtin.learning_rate"),
        ({"training": {"sft": {"epochs": True}}}, "33: training.sft.epochs"),
        ({"training": {"seeds": [1, True]}}, "34: training.seeds.1"),
        ({"generation": {"ray": {"workers": True}}}, "19: generation.ray.workers"),
    ],
    ids=["seed", "a variant's k", "bound past 0 and 1", "a float", "a method's section", "a list", "an engine's"],
)
def test_a_boolean_is_no_number(tmp_path, overrides, field):
    result = cli_bench(tmp_path, micro(**overrides))
    assert_input_error(
        result, f"bench.yaml:{field}: expected a number, got a boolean (true/false)", no_run_in=tmp_path
    )


def test_a_number_as_a_string_is_still_taken(tmp_path):
    """What pydantic took before, it takes still: "2" for k (only booleans changed)."""
    from harness.config import load_config

    path = tmp_path / "bench.yaml"
    path.write_text(MICRO_CONFIG.replace("k: 2", "k: '2'"))
    assert load_config(path).variants[1].k == 2


@pytest.mark.parametrize(
    "overrides, field, got",
    [
        ({"seed": 99999999999999999999999}, "2: seed", "99999999999999999999999"),
        ({"suite": {"builtin": {"seed": -1}}}, "5: suite.builtin.seed", "-1"),
        ({"training": {"seeds": [3, 2**32]}}, "34: training.seeds.1", "4294967296"),
    ],
    ids=["the issue's", "negative", "one of training.seeds"],
)
def test_seed_out_of_the_generators_range(tmp_path, overrides, field, got):
    result = cli_bench(tmp_path, micro(**overrides))
    assert_input_error(
        result,
        f"bench.yaml:{field}: a seed is a whole number from 0 to 4294967295 (2**32 - 1), got {got}",
        no_run_in=tmp_path,
    )
    nothing_built(tmp_path)


def test_a_number_that_is_none(tmp_path):
    result = cli_bench(tmp_path, micro(model={"builtin": {"learning_rate": float("inf")}}))
    assert_input_error(result, "model.builtin.learning_rate: expected a finite number, got inf")


def test_lone_surrogate_in_the_config(tmp_path):
    path, result = bench_text(tmp_path, MICRO_CONFIG.replace("name: micro", 'name: "mi\\ud800cro"'))
    assert_input_error(result, f"error: {path}:1: name: not valid Unicode: a lone surrogate \\ud800")


# --- suites ----------------------------------------------------------------------------------------


def jsonl_suite(tmp_path: Path, questions: bytes) -> object:
    (tmp_path / "corpus.jsonl").write_text(CORPUS)
    (tmp_path / "questions.jsonl").write_bytes(questions)
    return cli_bench(tmp_path, suite=JSONL_SUITE)


def test_lone_surrogate_in_a_jsonl_question(tmp_path):
    good = {"id": "q1", "question": "Sky?", "answers": ["blue"]}
    rows = [good, {"id": "q2", "question": LONE, "answers": ["x"]}]
    result = jsonl_suite(tmp_path, "\n".join(json.dumps(r) for r in rows).encode())
    assert_input_error(
        result, "questions.jsonl:2: question: not valid Unicode: a lone surrogate \\ud800", no_run_in=tmp_path
    )
    nothing_built(tmp_path)


def test_lone_surrogate_in_a_jsonl_answer_names_the_item(tmp_path):
    row = {"id": "q1", "question": "Sky?", "answers": ["blue", "\udfff"]}
    result = jsonl_suite(tmp_path, json.dumps(row).encode())
    assert_input_error(result, "questions.jsonl:1: answers.1: not valid Unicode", no_run_in=tmp_path)


def test_invalid_utf8_in_a_jsonl_suite(tmp_path):
    result = jsonl_suite(tmp_path, b'{"id": "q1", "question": "Caf\xe9?", "answers": ["x"]}\n')
    assert_input_error(result, "questions.jsonl:1: not UTF-8 text", no_run_in=tmp_path)


def test_lone_surrogate_in_a_squad_file(tmp_path):
    qa = {"id": 1, "question": LONE, "answers": [{"text": "a", "answer_start": 0}]}
    data = {"data": [{"paragraphs": [{"context": "a b", "document_id": "d", "qas": [qa]}]}]}
    (tmp_path / "s.json").write_text(json.dumps(data, indent=1))
    result = cli_bench(tmp_path, suite={"builtin": DROP, "squad": {"path": "s.json"}})
    assert_input_error(
        result,
        "s.json:11: data.0.paragraphs.0.qas.0.question: not valid Unicode: a lone surrogate \\ud800",
        no_run_in=tmp_path,
    )


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine(tmp_path):
    """A pair (an emoji written as two escapes) is one character, and `\\\\ud800` is text: the file
    reads, and the lone one after them is found on its own line."""
    from core.errors import InputError
    from suites.jsonl import read_json

    path = tmp_path / "s.json"
    path.write_text('{"a": "\\ud83d\\ude00 \\\\ud800",\n "b": "\\udc00"}')
    with pytest.raises(InputError) as err:
        read_json(path)
    assert (err.value.line, err.value.field) == (2, "b")
    path.write_text('{"a": "\\ud83d\\ude00 \\\\ud800"}')
    assert read_json(path) == {"a": "\U0001f600 \\ud800"}


def test_lone_surrogate_in_pubmedqa(tmp_path):
    record = {"QUESTION": LONE, "CONTEXTS": ["c"], "LABELS": ["L"], "final_decision": "yes", "LONG_ANSWER": "a"}
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": record}))
    result = cli_bench(tmp_path, suite={"builtin": DROP, "pubmedqa": {"path": "ori_pqal.json"}})
    assert_input_error(result, "ori_pqal.json:1: 1.QUESTION: not valid Unicode", no_run_in=tmp_path)


def test_lone_surrogate_in_preference_pairs(tmp_path):
    row = {"question": "q?", "chosen": "yes", "rejected": "no \ud800"}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(row) + "\n")
    result = cli_bench(
        tmp_path, micro(suite={"builtin": DROP, "hh_rlhf": {"path": "pairs.jsonl"}}, retrievers=DROP, variants=[BASE])
    )
    assert_input_error(result, "pairs.jsonl:1: rejected: not valid Unicode", no_run_in=tmp_path)


def test_a_jsonl_suite_nested_past_the_parser(tmp_path):
    result = jsonl_suite(tmp_path, b'{"id": "q1", "question": ' + b"[" * 100_000 + b"}\n")
    assert_input_error(result, "questions.jsonl:1: invalid JSON", no_run_in=tmp_path)


# --- the cache and its store ------------------------------------------------------------------------


def test_cache_that_is_a_file(tmp_path, own_cache):
    own_cache.write_text("not a folder")
    assert_input_error(
        cli_bench(tmp_path),
        f"error: {own_cache}: the cache folder (RAGVFT_CACHE) is a file, not a folder",
        no_run_in=tmp_path,
    )


def test_cache_inside_a_file(tmp_path, own_cache):
    own_cache.write_text("not a folder")
    os.environ["RAGVFT_CACHE"] = str(own_cache / "sub")  # monkeypatch (own_cache) restores it
    assert_input_error(cli_bench(tmp_path), f"cannot be made: {own_cache} is a file", no_run_in=tmp_path)


def test_cache_that_cannot_be_written(tmp_path, own_cache, monkeypatch):
    own_cache.mkdir()
    own_cache.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: the refusal is the file system's, faked here
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != own_cache and real(p, mode, **kw))
    try:
        assert_input_error(cli_bench(tmp_path), f"{own_cache}: the cache folder (RAGVFT_CACHE) is not writable")
    finally:
        own_cache.chmod(0o700)
    nothing_built(tmp_path)


@pytest.mark.parametrize(
    "kind, words",
    [("text", "not a SQLite database: move it away"), ("folder", "a folder where the cache keeps a SQLite")],
)
def test_results_store_that_is_not_a_database(tmp_path, own_cache, kind, words):
    store = own_cache / "results.sqlite"
    if kind == "folder":
        store.mkdir(parents=True)
    else:
        own_cache.mkdir()
        store.write_text("these are not the rows you are looking for\n")
    assert_input_error(cli_bench(tmp_path), f"error: {store}: {words}", no_run_in=tmp_path)
    nothing_built(tmp_path)


def test_results_store_that_is_damaged_past_its_header(tmp_path):
    """What the quick look at the cache cannot see, opening the store does: one line, never a traceback."""
    from core.errors import InputError
    from harness.store import check_store

    store = tmp_path / "results.sqlite"
    store.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    with pytest.raises(InputError, match="not a usable SQLite database"):
        check_store(store)


KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
from core.cache import building
with building(Path(sys.argv[1])) as tmp:
    (tmp / "half-written").write_text("...")
    print(tmp, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_build_leaves_nothing_after_the_next_start(tmp_path, own_cache, monkeypatch):
    """A build killed mid-way (SIGKILL: no clean-up runs) leaves its temporary folder, named with its
    pid; the next run removes it before it builds anything, and leaves alone what a live writer (or one
    it cannot know) is writing."""
    import harness.artifacts.model
    from core.errors import InputError

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, str(own_cache / "adapters" / "sft-key")],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1],
    )
    assert killed.returncode == -signal.SIGKILL
    left = Path(killed.stdout.strip())
    assert left.is_dir() and left.name.startswith(".sft-key.") and "@" in left.name  # .<name>.<pid>@<host>.
    live = own_cache / "models" / f".builtin-base-x.{writer_tag()}.abcdefgh.tmp"  # this very process
    live.mkdir(parents=True)
    old = own_cache / "models" / ".gguf-y.k2j4h5g6.tmp"  # no writer named, two hours old
    old.mkdir()
    os.utime(old, (time.time() - 7200,) * 2)
    recent = own_cache / "models" / ".gguf-z.k2j4h5g6.tmp"  # no writer named, just made: may be live
    recent.mkdir()

    def stop(*args, **kwargs):
        raise InputError("stop", "the base model would be built now")

    monkeypatch.setattr(harness.artifacts.model, "build_base_model", stop)
    assert_input_error(cli_bench(tmp_path), "would be built now")
    assert not left.exists() and not old.exists()
    assert live.exists() and recent.exists()


def test_another_hosts_temporary_folder_is_left_a_day(tmp_path):
    """A cache shared with other machines or containers: their pids mean nothing here, so what they
    are building is left alone for a day, then taken as abandoned."""
    from core.cache import remove_abandoned

    fresh = tmp_path / "adapters" / ".sft-a.4242@00000000.abcdefgh.tmp"
    stale = tmp_path / "adapters" / ".sft-b.4242@00000000.abcdefgh.tmp"
    for folder in (fresh, stale):
        folder.mkdir(parents=True)
    os.utime(stale, (time.time() - 25 * 3600,) * 2)
    assert remove_abandoned(tmp_path) == [stale]
    assert fresh.exists() and not stale.exists()
