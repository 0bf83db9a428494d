"""`ragvft synth`: every check drops what it should, each drop counted under its reason; the written
suite loads through the project's suite loader and runs; bad input is one line, exit 2, nothing left
behind; the report shows hostile text as text.

The round trip's reader here is the shipped built-in base model (it loads in a second and reads the
built-in domain's passages), so the checks are tried against a real model's answers."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from harness import prompts
from harness.builtin.shipped import SHIPPED
from harness.cli import app
from harness.engines import Decoding, HFEngine, Request
from harness.synth.report import render_report
from suites.builtin import builtin_suite
from suites.synth import REASONS, TYPE_OF_CATEGORY, Candidate, Outcome, check_candidates, parse_reply
from tests.conftest import MICRO, MICRO_CONFIG, assert_input_error, micro, write_config

MICRO_LINES = MICRO_CONFIG.count("\n")
COVIDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "covidqa" / "covidqa.json"


@pytest.fixture(scope="module")
def suite():
    return builtin_suite(7, scale=40)


@pytest.fixture(scope="module")
def read():
    """The reader: the shipped base model answering from the passage, in the rag variants' prompt."""
    engine = HFEngine(str(SHIPPED / "base"), batch_size=32)

    def answer(pairs):
        requests = [
            Request(prompts.with_passages(q, [p.text]), decoding=Decoding(max_new_tokens=16))
            for q, p in pairs
        ]
        return [c.text for c in engine.generate(requests)]

    return answer


@pytest.fixture(scope="module")
def read_right(suite, read):
    """Corpus-only questions (never in the training sets) that the reader answers as the gold says."""
    passages = suite.passage_map()
    pool = [q for q in suite.questions if q.slice == "corpus_only"]
    said = read([(q.text, passages[q.gold_passage_ids[0]]) for q in pool])
    return [q for q, s in zip(pool, said, strict=True) if s == q.answers[0]]


def _reply(question: str, answer: str, kind: str) -> str:
    return json.dumps({"question": question, "answer": answer, "type": kind})


def _candidate(suite, q, question=None, answer=None, kind=None) -> Candidate:
    passage = suite.passage_map()[q.gold_passage_ids[0]]
    reply = _reply(question or q.text, answer or q.answers[0], kind or TYPE_OF_CATEGORY[q.category])
    return Candidate(passage, reply)


def test_each_check_drops_what_it_should_under_its_reason(suite, read, read_right):
    good = [q for q in read_right if q.category == "pricing"][:2]
    assert len(good) == 2, "the shipped base model reads pricing passages"
    one, two = good
    trained = next(q for q in suite.questions if q.slice == "trained" and q.category == "pricing")
    sft = next(p for p in suite.training.sft if p.passage_ids == trained.gold_passage_ids)
    org = "Halvard Quell Instruments"  # in every passage, and no price
    candidates = [
        _candidate(suite, one),
        Candidate(suite.passage_map()[one.gold_passage_ids[0]], "The price is high, I think."),
        _candidate(suite, two, answer="12345 dollars"),  # not in the passage
        _candidate(suite, two, answer=org),  # in the passage, but the reader gives the price
        _candidate(suite, trained, question=sft.question, answer=sft.answer),  # the SFT question itself
        _candidate(suite, two, kind="colour"),
        _candidate(suite, one),  # the first one again
        _candidate(suite, two),
        _candidate(suite, two, question=two.text.rstrip("?") + " in the Zorblat X99?"),  # not its passage
    ]
    outcome = check_candidates(candidates, read=read, training=suite.training, max_type_share=1.0)
    assert outcome.counts() == {
        "unparseable": 1,
        "type_not_asked": 1,
        "unsupported": 1,
        "ungrounded": 1,
        "leak": 1,
        "round_trip": 1,
        "duplicate": 1,
        "type_cap": 0,
    }
    assert [c.reason for c in candidates] == [
        None,
        "unparseable",
        "unsupported",
        "round_trip",
        "leak",
        "type_not_asked",
        "duplicate",
        None,
        "ungrounded",
    ]
    assert outcome.kept == [candidates[0], candidates[-2]] and candidates[-1].detail == "Zorblat, X99"
    assert candidates[3].reader_answer == two.answers[0] and candidates[3].round_trip_f1 == 0.0
    assert sft.question in candidates[4].detail and one.text == candidates[6].detail
    assert outcome.by_type() == {"colour": {"kept": 0, "dropped": 1}, "numeric": {"kept": 2, "dropped": 5}}


def test_no_type_holds_more_than_its_share(suite, read, read_right):
    by_type: dict[str, list] = {}
    for q in read_right:
        by_type.setdefault(TYPE_OF_CATEGORY[q.category], []).append(q)
    assert len(by_type) >= 3
    candidates = [_candidate(suite, q) for q in read_right]
    outcome = check_candidates(candidates, read=read, training=suite.training, max_type_share=0.3)
    kept = outcome.kept
    share = max(0.3, 1 / len(by_type))
    for kind in by_type:
        assert sum(c.type == kind for c in kept) <= share * len(kept) + 1e-9, kind
    counts = outcome.counts()  # the questions of a template may be near-duplicates of each other
    assert counts["type_cap"] == len(candidates) - len(kept) - counts["duplicate"] > 0
    assert {c.type for c in kept} == set(by_type)  # every type keeps its questions up to the cap


def test_parse_reply_reads_the_first_json_object_with_the_three_fields():
    reply = 'Sure: {"question": "Who runs it?", "answer": "Ada Voss", "type": "Person"} {"x": 1}'
    assert parse_reply(reply) == {"question": "Who runs it?", "answer": "Ada Voss", "type": "person"}
    assert parse_reply('{"question": "Who?", "answer": 3, "type": "person"}') is None
    assert parse_reply('{"question": "Who?", "answer": "x"') is None
    assert parse_reply("no json") is None


def test_the_report_shows_hostile_text_as_text(suite):
    passage = suite.passages[0]
    hostile = "<script>alert(1)</script>"
    c = Candidate(passage, f"{hostile} not json", reason="unparseable")
    kept = Candidate(passage, "", question=f"What is {hostile}?", answer=hostile, type="other")
    kept.reader_answer, kept.round_trip_f1 = hostile, 1.0
    outcome = Outcome([c, kept], [kept])
    summary = {
        "source": {"kind": "folder", "path": hostile, "skipped": {hostile: "empty"}},
        "suite": hostile,
        "corpus_passages": 1,
        "passages_asked": 1,
        "candidates": 2,
        "kept": 1,
        "dropped": outcome.counts(),
        "by_type": outcome.by_type(),
        "types": ["other"],
        "generator": {"kind": "builtin", "adapter": hostile},
        "reader": {"model": hostile},
        "wall_time_s": 1.0,
    }
    html = render_report(outcome, summary, builtin=True)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "bounded by the built-in model" in html
    for reason in REASONS:
        assert f"<td>{reason}</td>" in html


def _synth(tmp_path, config: dict, *args: str):
    path = write_config(tmp_path, config)
    out = tmp_path / "suite"
    return CliRunner().invoke(app, ["synth", "--config", str(path), "--out", str(out), *args]), out


def _one_line_exit_2(result, tmp_path, keep: set[str], *needles: str) -> None:
    """An input error (below any progress bar) naming every needle, and nothing written in `tmp_path`
    but the config and `keep`, not even a temporary folder."""
    line = assert_input_error(result, *needles, bars=True)
    assert line.startswith("error: ") and result.output.count("error:") == 1, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"bench.yaml", *keep}


def test_a_folder_with_no_readable_document_is_one_line_and_nothing_written(tmp_path, cache_dir):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (docs / "sub" / "blank.md").write_text("  \n")
    (docs / "picture.png").write_bytes(b"\x89PNG")
    result, _ = _synth(tmp_path, MICRO, "--docs", str(docs))
    _one_line_exit_2(result, tmp_path, {"docs"}, str(docs), "--docs", "2 .txt/.md files, none readable")
    result, _ = _synth(tmp_path, MICRO, "--docs", str(tmp_path / "nowhere"))
    _one_line_exit_2(result, tmp_path, {"docs"}, "nowhere", "folder not found")


def test_an_existing_out_folder_is_refused(tmp_path, cache_dir):
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "questions.jsonl").write_text("{}\n")
    result, out = _synth(tmp_path, MICRO)
    _one_line_exit_2(result, tmp_path, {"suite"}, "--out", "not an empty folder")
    assert [p.name for p in out.iterdir()] == ["questions.jsonl"]


def _only_the_report(out: Path) -> None:
    """A run that kept nothing writes no suite, only the report of what dropped and why."""
    assert {p.name for p in out.iterdir()} == {"synth.json", "synth-report.html"}
    assert json.loads((out / "synth.json").read_text())["kept"] == 0
    assert 'id="nothing-kept"' in (out / "synth-report.html").read_text()


def test_a_generator_whose_replies_never_parse_is_one_line_and_no_suite(tmp_path, micro_base):
    _, _, base = micro_base  # a 1-layer model trained 200 steps: it writes no JSON
    result, out = _synth(tmp_path, MICRO, "--generator", base.path)
    _one_line_exit_2(result, tmp_path, {"suite"}, "--generator", "none of the generator's", "replies parsed")
    assert "synth-report.html" in result.output.splitlines()[-1]
    _only_the_report(out)
    # the next try may replace a failed run's report (not a folder holding anything else)
    result, out = _synth(tmp_path, MICRO, "--generator", base.path)
    _one_line_exit_2(result, tmp_path, {"suite"}, "none of the generator's")
    _only_the_report(out)
    (out / "notes.txt").write_text("mine")
    result, out = _synth(tmp_path, MICRO, "--generator", base.path)
    _one_line_exit_2(result, tmp_path, {"suite"}, "--out", "not an empty folder")
    assert (out / "notes.txt").read_text() == "mine"


def test_the_builtin_writer_is_trained_once_and_cached(tmp_path, micro_base, cache_dir):
    tiny = micro(synth={"generator": {"builtin": {"examples": 32, "batch_size": 16}}, "passages": 4})
    result, out = _synth(tmp_path, tiny)  # two steps on the micro model: replies, but no JSON yet
    _one_line_exit_2(
        result, tmp_path, {"suite"}, "synth.generator", "none of the generator's 4 replies parsed"
    )
    _only_the_report(out)
    writers = list((cache_dir / "adapters").glob("qwriter-*"))
    assert len(writers) == 1 and (writers[0] / "adapter_config.json").is_file()
    stamp = writers[0].stat().st_mtime_ns
    result, _ = _synth(tmp_path, tiny)
    assert_input_error(result, bars=True)
    assert writers[0].stat().st_mtime_ns == stamp  # from the cache


def test_synth_settings_are_checked_at_load(tmp_path):
    from harness.config import load_config

    for setting, field, message in (
        ("{types: [numeric, colour]}", "synth.types.1", "unknown question type 'colour'"),
        ("{generator: {builtin: {}, path: x}}", "synth.generator", "exactly one generator"),
        ("{max_type_share: 0}", "synth.max_type_share", "greater than 0"),
    ):
        path = tmp_path / "bench.yaml"
        path.write_text(MICRO_CONFIG + f"synth: {setting}\n")  # as text: the error's line is known
        with pytest.raises(InputError) as e:
            load_config(path)
        assert e.value.field == field and message in e.value.message and e.value.line == MICRO_LINES + 1
    path = write_config(
        tmp_path, synth={"docs": "my-docs", "generator": {"path": "./model", "adapter_path": "lora"}}
    )
    synth = load_config(path).synth
    assert synth.docs == str(tmp_path / "my-docs") and synth.generator.adapter_path == str(tmp_path / "lora")
    assert synth.generator.path == str(tmp_path / "model")


def test_a_generator_on_a_server_gets_the_question_prompt(tmp_path, micro_base):
    from tests.openai_server import serve

    with serve(answer=lambda prompt: "Sorry, no JSON today.", models=("writer",)) as server:
        generator = {"openai": {"base_url": server.url, "models": {"base": "writer"}}, "chat_template": True}
        result, out = _synth(tmp_path, micro(synth={"generator": generator, "passages": 3}))
    _one_line_exit_2(
        result, tmp_path, {"suite"}, "synth.generator", "none of the generator's 3 replies parsed"
    )
    _only_the_report(out)
    assert server.paths == ["/v1/models"] + ["/v1/chat/completions"] * 3
    assert all(
        b["model"] == "writer" and "Passage: " in b["messages"][0]["content"] for b in server.bodies[1:]
    )


SYNTH = {
    "name": "synth",
    "seed": 7,
    "suite": {"builtin": {"seed": 7, "scale": 40}},
    "model": {"builtin": {}},
    "generation": {"max_new_tokens": 16, "batch_size": 32},
    "retrievers": {"bm25": {"kind": "bm25"}},
    "variants": [{"name": "base"}, {"name": "rag", "retriever": "bm25", "k": 1}],
    "baseline": "base",
    "metrics": ["em", "f1"],
    "bootstrap_samples": 200,
}


def test_the_shipped_writer_is_the_default_recipe(tmp_path, cache_dir):
    """The shipped writer stands in for the default one only while it has its key (else: rebuild it
    with `python -m harness.synth.ship`)."""
    from harness.artifacts import resolve_model
    from harness.config import load_config
    from harness.config.synth import SynthConfig
    from harness.synth.generator import SHIPPED_WRITER, writer_job
    from harness.training import TRAINING_RECORD

    config = load_config(write_config(tmp_path, SYNTH))
    job = writer_job(config, SynthConfig().generator, resolve_model(config, {}))
    record = json.loads((SHIPPED_WRITER / TRAINING_RECORD).read_text())
    assert record["key"] == job.key() and record["steps"] <= 400
    assert all(f.stat().st_size < 5_000_000 for f in SHIPPED_WRITER.iterdir())


def test_a_written_suite_loads_through_the_suite_loader_and_benches(tmp_path, cache_dir):
    from harness.artifacts import load_suite
    from harness.config import load_config
    from harness.run import bench

    result, out = _synth(tmp_path, SYNTH | {"synth": {"passages": 24}})
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "corpus.jsonl",
        "questions.jsonl",
        "synth-report.html",
        "synth.json",
    }
    summary = json.loads((out / "synth.json").read_text())
    assert summary["generator"]["status"] in ("shipped", "cached")  # nothing trained
    assert summary["candidates"] == 24 == summary["kept"] + sum(summary["dropped"].values())
    assert summary["kept"] >= 8, summary  # measured: 15 of these 24
    assert f"kept {summary['kept']} of 24 questions" in result.output

    jsonl = {"corpus": f"{out}/corpus.jsonl", "questions": f"{out}/questions.jsonl"}
    config_path = write_config(tmp_path, SYNTH | {"suite": {"jsonl": jsonl}}, "on-it.yaml")
    suite = load_suite(load_config(config_path))
    ids = {p.id for p in suite.passages}
    assert len(suite.passages) == summary["corpus_passages"] and len(suite.questions) == summary["kept"]
    assert all(q.gold_passage_ids[0] in ids and q.category in summary["types"] for q in suite.questions)
    run = bench(load_config(config_path))
    assert run.summary["variants"]["rag"]["em"]["n"] == summary["kept"]
    html = (out / "synth-report.html").read_text()
    assert "bounded by the built-in model" in html and 'id="reasons"' in html and 'id="types"' in html


@pytest.mark.skipif(not COVIDQA.is_file(), reason="COVID-QA is not in ../shared/data")
def test_covidqa_papers_are_the_corpus_asked_about(tmp_path):
    from harness.artifacts import load_suite
    from harness.config import load_config
    from harness.synth.run import _corpus
    from suites.synth import spread

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "synth-covidqa.yaml")
    passages, source = _corpus(config, config.synth, load_suite(config), None)
    chosen = spread(passages, config.synth.passages)
    assert source["kind"] == "suite" and len(passages) > 5000 and len(chosen) == 400
    assert len({p.source for p in chosen}) == len({p.source for p in passages})  # every paper asked about
    assert max(len(p.text.split()) for p in chosen) <= 40


def test_a_folder_of_documents_becomes_a_suite_and_hostile_text_stays_text(tmp_path, cache_dir, suite):
    docs = tmp_path / "docs"
    (docs / "desk").mkdir(parents=True)
    for p in suite.passages[:12]:
        (docs / ("desk" if p.id.endswith("1") else "") / f"{p.id}.md").write_text(p.text + "\n")
    (docs / "hostile.txt").write_text(
        "The <script>alert(1)</script> probe is sold by Halvard Quell Instruments."
    )
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    result, out = _synth(tmp_path, SYNTH, "--docs", str(docs))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "synth.json").read_text())
    assert summary["source"]["files"] == 14 and summary["source"]["skipped"] == {
        "latin1.txt": "not UTF-8 text (byte 3)"
    }
    assert summary["corpus_passages"] == summary["passages_asked"] == 13 and summary["kept"] > 0
    corpus = [json.loads(line) for line in (out / "corpus.jsonl").read_text().splitlines()]
    assert {r["source"] for r in corpus} >= {"hostile.txt", "desk/p-hq-0001.md"}
    assert all(r["id"] == r["source"] + "#0" for r in corpus)  # short documents: one chunk each
    html = (out / "synth-report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "latin1.txt" in html
