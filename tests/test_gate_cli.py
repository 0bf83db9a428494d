"""`ragvft bless`, `ragvft gate` and a gated `ragvft bench` end to end on the micro model: an unchanged
rerun passes (exit 0), an adapter broken on purpose fails (exit 1) naming the metric, and a missing
baseline is an input error (exit 2)."""

import json
import xml.etree.ElementTree as ET

from tests.conftest import (
    BASE,
    BENCH_SFT,
    DROP,
    RAG,
    assert_input_error,
    invoke,
    micro,
    write_config,
)

GATED = micro(
    variants=[BASE, RAG, {"name": "sft", "adapter": "sft"}],
    training={"sft": BENCH_SFT},
    gate={
        "blessed": "blessed.json",
        "rules": [
            {"variant": "sft", "metric": "f1", "margin": 0.0},
            {"variant": "rag", "metric": "f1", "margin": 0.0},
        ],
    },
)


def _write(tmp_path, shuffle: bool, **overrides):
    return write_config(tmp_path, GATED, training={"sft": {"shuffle_answers": shuffle}}, **overrides)


def _invoke(*args):
    """`ragvft ARGS...`: its exit code (a clean exit, error or not: never a crash) and its output's words."""
    code, output = invoke(*args)
    return code, " ".join(output.split())


def test_gated_bench_passes_unchanged_and_fails_on_a_broken_adapter(tmp_path, cache_dir):
    config = _write(tmp_path, shuffle=False)
    bench = invoke("bench", "--config", config)  # below the bars of what it built, and nothing half-written
    words = ("blessed.json: baseline not found", "gate.baseline")
    assert_input_error(bench, *words, bars=True, no_run_in=tmp_path)

    _write(tmp_path, shuffle=False, gate=DROP)
    assert _invoke("bench", "--config", config)[0] == 0
    code, out = _invoke("bless", "--run", tmp_path / "runs" / "latest", "--out", tmp_path / "blessed.json")
    assert code == 0 and "blessed run" in out

    config = _write(tmp_path, shuffle=False)
    code, out = _invoke("bench", "--config", config)
    assert code == 0 and "gate passed: 2/2 rules" in out, out
    run = tmp_path / "runs" / "latest"
    suite = ET.parse(run / "junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    assert "✅ **gate pass**" in (run / "report.md").read_text()

    config = _write(tmp_path, shuffle=True)  # SFT on answers shuffled across questions
    code, out = _invoke("bench", "--config", config)
    assert code == 1, out
    assert "FAIL sft.f1" in out and "dropped" in out and "FAIL rag" not in out
    run = tmp_path / "runs" / "latest"
    suite = ET.parse(run / "junit.xml").getroot()
    assert suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed[0].startswith("sft.f1")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["gate"]["status"] == "fail"
    assert "Release gate: FAILED" in (run / "report.html").read_text()

    # The standalone gate agrees, from the run folder alone, and writes JUnit where asked.
    code, out = _invoke(
        "gate", "--run", run, "--baseline", tmp_path / "blessed.json", "--junit", tmp_path / "j.xml"
    )
    assert code == 1 and "FAIL sft.f1" in out and (tmp_path / "j.xml").exists()
    nope = invoke("gate", "--run", tmp_path / "nope", "--baseline", tmp_path / "blessed.json")
    assert_input_error(nope, "not a ragvft run folder")


def _blessed_run(tmp_path) -> tuple:
    """A gated micro run (runs/latest) passing against a baseline blessed from an ungated run."""
    ungated = write_config(tmp_path, None, "ungated.yaml")
    assert _invoke("bench", "--config", ungated)[0] == 0
    code, out = _invoke("bless", "--run", tmp_path / "runs" / "latest", "--out", tmp_path / "blessed.json")
    assert code == 0, out
    rules = [
        {"variant": "rag", "metric": "em", "margin": 0.2},
        {"variant": "base", "metric": "f1", "margin": 0.05},
    ]
    config = write_config(tmp_path, gate={"blessed": "blessed.json", "rules": rules})
    code, out = _invoke("bench", "--config", config)
    assert code == 0 and "gate passed: 2/2" in out, out
    return tmp_path / "runs" / "latest", tmp_path / "blessed.json"


def test_the_gate_cli_fails_closed_on_edited_suites_null_values_and_malformed_files(tmp_path, cache_dir):
    run, blessed = _blessed_run(tmp_path)
    original = json.loads(blessed.read_text())
    code, out = _invoke("gate", "--run", run)  # the baseline comes from the run's config
    assert code == 0 and "gate passed" in out

    # Gold answers edited under the same question ids: not the same suite, exit 2, naming what changed.
    edited = json.loads(blessed.read_text())
    q = sorted(edited["questions"])[3]
    edited["questions"][q]["gold answers"] = "0" * 16
    blessed.write_text(json.dumps(edited))
    code, out = _invoke("gate", "--run", run, "--baseline", blessed)  # the gate's verdict, not an input error
    assert code == 2 and f"1 questions' gold answers changed (e.g. {q})" in out

    # A blessed value set to null: that rule fails closed with its reason (exit 1), no traceback.
    nulled = json.loads(json.dumps(original))
    nulled["variants"]["rag"]["em"]["per_question"][q] = None
    blessed.write_text(json.dumps(nulled))
    code, out = _invoke("gate", "--run", run, "--baseline", blessed)
    assert code == 1 and f"undetermined values in the blessed run (e.g. {q})" in out

    # Every blessed value null: still a reasoned failure, never a crash (it used to exit 1 on a TypeError).
    for k in nulled["variants"]["rag"]["em"]["per_question"]:
        nulled["variants"]["rag"]["em"]["per_question"][k] = None
    blessed.write_text(json.dumps(nulled))
    code, out = _invoke("gate", "--run", run, "--baseline", blessed)
    assert code == 1 and "undetermined values in the blessed run" in out

    # A malformed baseline: one line, exit 2.
    broken = json.loads(json.dumps(original))
    broken["variants"]["rag"]["em"] = 5
    blessed.write_text(json.dumps(broken))
    assert assert_input_error(invoke("gate", "--run", run, "--baseline", blessed), "malformed").startswith(
        "error:"
    )


def test_bless_refuses_a_run_whose_gated_values_are_undetermined(tmp_path, cache_dir):
    run, _ = _blessed_run(tmp_path)
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    rag = next(r for r in rows if r["variant"] == "rag")
    rag["scores"]["em"]["value"] = None
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert_input_error(
        invoke("bless", "--run", run, "--out", tmp_path / "again.json"), "cannot bless: rag.em has"
    )
    assert not (tmp_path / "again.json").exists()


def test_bless_and_gate_name_a_path_of_the_wrong_kind_in_one_line(tmp_path, cache_dir):
    run, blessed = _blessed_run(tmp_path)
    not_a_run = invoke("gate", "--run", blessed, "--baseline", blessed)  # a file, not a run folder
    assert assert_input_error(not_a_run).startswith("error:")
    not_a_file = invoke("gate", "--run", run, "--baseline", tmp_path)  # a folder, not a baseline
    assert assert_input_error(not_a_file, "cannot read the baseline").startswith("error:")
    no_folder = invoke(
        "gate", "--run", run, "--baseline", blessed, "--junit", tmp_path / "no" / "such" / "j.xml"
    )
    assert assert_input_error(no_folder).startswith("error:")
    under_a_file = invoke("bless", "--run", run, "--out", blessed / "x.json")
    assert_input_error(under_a_file, "cannot write the baseline")
