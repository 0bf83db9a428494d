"""The walking skeleton end to end on a micro model: suite -> model -> generate -> score -> report."""

import json
import sqlite3

from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_config
from harness.run import bench
from tests.conftest import BASE, RAG, write_config


def test_bench_writes_the_contracted_outputs(micro_config):
    result = bench(load_config(micro_config))
    run = result.run_dir
    assert {p.name for p in run.iterdir()} == {
        "results.jsonl",
        "summary.json",
        "manifest.json",
        "report.html",
        "report.md",
        "junit.xml",
    }
    assert (micro_config.parent / "runs" / "latest").resolve() == run.resolve()

    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    questions = {r["question_id"] for r in rows}
    assert len(rows) == 2 * len(questions)  # one row per (variant, question)
    assert {r["variant"] for r in rows} == {"base", "rag"}
    for r in rows:
        assert set(r["scores"]) == {"em", "f1"}
        assert (r["retrieved"] is None) == (r["variant"] == "base")
    assert all(len(r["retrieved"]) == 2 for r in rows if r["variant"] == "rag")

    summary = json.loads((run / "summary.json").read_text())
    assert summary["baseline_variant"] == "base"
    for variant in ("base", "rag"):
        for metric in ("em", "f1"):
            s = summary["variants"][variant][metric]
            assert set(s) >= {"mean", "ci95", "n", "undetermined"}
            assert s["n"] == len(questions) and s["undetermined"] == 0
            assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    # The summary's means are the means of the rows.
    em_rag = [r["scores"]["em"]["value"] for r in rows if r["variant"] == "rag"]
    assert abs(summary["variants"]["rag"]["em"]["mean"] - sum(em_rag) / len(em_rag)) < 1e-12
    assert set(summary["breakdown"]["slice"]) == {"trained", "corpus_only"}
    assert "rag" in summary["deltas"] and "base" not in summary["deltas"]
    # Where rag's answers come from, against base's, counted from the rows
    at = summary["attribution"]["rag"]
    right = {r["question_id"]: r["scores"]["em"]["value"] == 1 for r in rows if r["variant"] == "base"}
    rag_right = [r["question_id"] for r in rows if r["variant"] == "rag" and r["scores"]["em"]["value"] == 1]
    assert at["closed_book"] == "base" and at["right"] == len(rag_right) and at["n"] == len(questions)
    assert at["from_memory"] == sum(right[q] for q in rag_right) and at["right"] + at["wrong"] == at["n"]

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seeds"] == {"run": 3, "suite": 3, "training": [3]}
    assert manifest["model"]["kind"] == "builtin"
    assert manifest["cache"]["base_model"] in {"built", "cached"}
    html = (run / "report.html").read_text()
    for needle in (
        "Leaderboard",
        "By knowledge slice",
        "corpus_only",
        ">rag<",
        ">base<",
        "memory or the passage",
    ):
        assert needle in html


def test_results_load_into_pandas_with_a_column_per_metric(micro_config):
    from reports import load_results

    result = bench(load_config(micro_config))
    frame = load_results(micro_config.parent / "runs" / "latest")
    assert len(frame) == len(result.rows)
    table = frame.pivot_table(index="slice", columns="variant", values="em", aggfunc="mean")
    assert set(table.columns) == {"base", "rag"} and set(table.index) == {"trained", "corpus_only"}
    assert frame["em"].mean() == sum(r["scores"]["em"]["value"] for r in result.rows) / len(result.rows)


def test_rerun_generates_nothing_and_store_has_no_duplicates(micro_config, cache_dir):
    first = bench(load_config(micro_config))
    second = bench(load_config(micro_config))
    manifest = json.loads((second.run_dir / "manifest.json").read_text())
    assert manifest["cache"]["generations_computed"] == 0
    assert manifest["cache"]["base_model"] == "cached"
    assert manifest["cache"]["generations_cached"] == len(second.rows)
    assert [r["answer"] for r in first.rows] == [r["answer"] for r in second.rows]
    db = sqlite3.connect(cache_dir / "results.sqlite")
    keys = [k for (k,) in db.execute("SELECT key FROM generations")]
    assert len(keys) == len(set(keys))


def test_cli_bench_prints_table_and_exits_zero(micro_config):
    result = CliRunner().invoke(app, ["bench", "--config", str(micro_config)])
    assert result.exit_code == 0, result.output
    assert "rag" in result.output and "report:" in result.output


def test_every_command_documents_its_options_and_rejects_unknown_ones():
    """Every command and subcommand: --help exits 0 and explains every option it has; an unknown
    option is a usage error (exit 2), as typer/click tools do."""
    import typer.main

    group = typer.main.get_command(app)
    commands = [(name, cmd) for name, cmd in group.commands.items() if not hasattr(cmd, "commands")]
    commands += [
        (f"{g} {n}", c)
        for g, sub in group.commands.items()
        if hasattr(sub, "commands")
        for n, c in sub.commands.items()
    ]
    assert {"bench", "retrieval", "gate", "bless", "calibrate", "export lm-eval"} <= {n for n, _ in commands}
    for name, cmd in commands:
        out = CliRunner().invoke(app, [*name.split(), "--help"])
        assert out.exit_code == 0 and "Usage: " in out.output and name.split()[-1] in out.output, name
        assert cmd.help, f"{name} has no description"
        for param in cmd.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{name} --{param.name} has no help"
                if param.param_type_name == "argument":  # a positional one shows by name
                    assert param.name in out.output, (name, param.name)
                else:
                    assert f"--{param.name.replace('_', '-')}" in out.output, (name, param.name)
        bad = CliRunner().invoke(app, [*name.split(), "--no-such-option"])
        assert bad.exit_code == 2 and "No such option" in bad.output, name


def test_changing_one_variant_recomputes_only_its_rows(micro_config):
    bench(load_config(micro_config))
    again = bench(load_config(micro_config))
    assert again.manifest["cache"]["generations_computed"] == 0
    assert again.manifest["cache"]["scores_computed"] == 0  # scores are rows in the store too
    n = len({r["question_id"] for r in again.rows})
    write_config(micro_config.parent, variants=[BASE, RAG | {"k": 1}])  # only `rag` changes
    changed = bench(load_config(micro_config))
    assert changed.manifest["cache"]["generations_computed"] == n
    assert changed.manifest["cache"]["generations_cached"] == n  # base's rows came from the store
    assert changed.manifest["cache"]["scores_computed"] == 2 * n  # em and f1 of rag's new answers


def test_a_corpus_level_metric_has_no_per_row_value(micro_config):
    """Defect: results.jsonl's macro_f1 column held each row's accuracy, which a reader (or pandas)
    would average into a number that is not macro-F1."""
    write_config(micro_config.parent, metrics=["em", "macro_f1"])
    result = bench(load_config(micro_config))
    for r in result.rows:
        s = r["scores"]["macro_f1"]
        assert s["value"] is None and "whole set of answers" in s["reason"]
    stats = result.summary["variants"]["base"]["macro_f1"]
    assert stats["n"] == len({r["question_id"] for r in result.rows}) and stats["undetermined"] == 0
    assert stats["mean"] is not None
