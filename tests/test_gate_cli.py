"""`ragvft bless`, `ragvft gate` and a gated `ragvft bench` end to end on the micro model: an unchanged
rerun passes (exit 0), an adapter broken on purpose fails (exit 1) naming the metric, and a missing
baseline is an input error (exit 2)."""

import json
import xml.etree.ElementTree as ET

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import MICRO_CONFIG

GATED = MICRO_CONFIG.replace(
    "baseline: base",
    "  - name: sft\n    adapter: sft\nbaseline: base",
) + (
    "training:\n  sft: {epochs: 20, learning_rate: 1.0e-2, batch_size: 8, shuffle_answers: SHUFFLE}\n"
    "gate:\n  baseline: blessed.json\n  rules:\n"
    "    - {variant: sft, metric: f1, margin: 0.0}\n"
    "    - {variant: rag, metric: f1, margin: 0.0}\n"
)


def _write(tmp_path, shuffle: bool):
    path = tmp_path / "bench.yaml"
    path.write_text(GATED.replace("SHUFFLE", "true" if shuffle else "false"))
    return path


def _invoke(*args):
    result = CliRunner().invoke(app, list(map(str, args)))
    # a crash would be an exception other than the command's own exit (CliRunner keeps it out of the
    # output): every outcome here, error or not, must be a clean exit with its code
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def test_gated_bench_passes_unchanged_and_fails_on_a_broken_adapter(tmp_path, cache_dir):
    config = _write(tmp_path, shuffle=False)
    code, out = _invoke("bench", "--config", config)
    assert code == 2 and "blessed.json: baseline not found" in out and "gate.baseline" in out
    assert not (tmp_path / "runs").exists()  # nothing half-written

    config.write_text(config.read_text().replace("gate:\n", "gate_off:\n", 1).split("gate_off:")[0])
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
    code, out = _invoke("gate", "--run", tmp_path / "nope", "--baseline", tmp_path / "blessed.json")
    assert code == 2 and "not a ragvft run folder" in out


def _blessed_run(tmp_path) -> tuple:
    """A gated micro run (runs/latest) passing against a baseline blessed from an ungated run."""
    ungated = tmp_path / "ungated.yaml"
    ungated.write_text(MICRO_CONFIG)
    assert _invoke("bench", "--config", ungated)[0] == 0
    code, out = _invoke("bless", "--run", tmp_path / "runs" / "latest", "--out", tmp_path / "blessed.json")
    assert code == 0, out
    config = tmp_path / "bench.yaml"
    config.write_text(
        MICRO_CONFIG
        + "gate:\n  baseline: blessed.json\n  rules:\n"
        + "    - {variant: rag, metric: em, margin: 0.2}\n    - {variant: base, metric: f1, margin: 0.05}\n"
    )
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
    code, out = _invoke("gate", "--run", run, "--baseline", blessed)
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
    code, out = _invoke("gate", "--run", run, "--baseline", blessed)
    assert code == 2 and out.startswith("error:") and "malformed" in out


def test_bless_refuses_a_run_whose_gated_values_are_undetermined(tmp_path, cache_dir):
    run, _ = _blessed_run(tmp_path)
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    rag = next(r for r in rows if r["variant"] == "rag")
    rag["scores"]["em"]["value"] = None
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out = _invoke("bless", "--run", run, "--out", tmp_path / "again.json")
    assert code == 2 and "cannot bless: rag.em has" in out and not (tmp_path / "again.json").exists()


def test_bless_and_gate_name_a_path_of_the_wrong_kind_in_one_line(tmp_path, cache_dir):
    run, blessed = _blessed_run(tmp_path)
    code, out = _invoke("gate", "--run", blessed, "--baseline", blessed)  # a file, not a run folder
    assert code == 2 and out.startswith("error:")
    code, out = _invoke("gate", "--run", run, "--baseline", tmp_path)  # a folder, not a baseline
    assert code == 2 and out.startswith("error:") and "cannot read the baseline" in out
    code, out = _invoke(
        "gate", "--run", run, "--baseline", blessed, "--junit", tmp_path / "no" / "such" / "j.xml"
    )
    assert code == 2 and out.startswith("error:")
    code, out = _invoke("bless", "--run", run, "--out", blessed / "x.json")  # under a file
    assert code == 2 and "cannot write the baseline" in out
