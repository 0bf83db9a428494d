"""The decision up front: per knowledge slice the winner, its lead over the runner-up and the baseline
with the paired interval, whether it is significant, and its cost; in summary.json, first in the HTML
report and the Markdown, and last on the console. Every figure in the sentences comes from the rows."""

import json
from types import SimpleNamespace as NS

from typer.testing import CliRunner

from harness.cli import app
from judges.scorers import first_paired
from reports.decision import decide
from reports.stats import paired_delta

VARIANTS = [
    NS(name="base", adapter=None, adapter_path=None, retriever=None),
    NS(name="rag", adapter=None, adapter_path=None, retriever="bm25"),
    NS(name="sft", adapter="sft", adapter_path=None, retriever=None),
]


def _config(variants=VARIANTS, metrics=("em",)):
    return NS(
        metrics=list(metrics),
        variants=variants,
        baseline="base",
        seed=0,
        bootstrap_samples=500,
        decision_metric=lambda: first_paired(list(metrics)),  # BenchConfig's, with no `decision.metric`
    )


def _rows(right: dict[str, dict[str, list[int]]], metric: str = "em") -> list[dict]:
    """right[variant][slice] = 0/1 per question of that slice."""
    rows = []
    for variant, slices in right.items():
        for slice_name, values in slices.items():
            for i, v in enumerate(values):
                rows.append(
                    {
                        "variant": variant,
                        "question_id": f"{slice_name}-{i}",
                        "slice": slice_name,
                        "scores": {metric: {"value": float(v)}},
                        "tokens_in": 70 if variant == "rag" else 20,
                        "tokens_out": 5,
                    }
                )
    return rows


def test_each_slice_names_its_winner_with_the_lead_its_interval_and_cost():
    rows = _rows(
        {
            "base": {"trained": [0] * 40, "corpus_only": [0] * 40},
            "rag": {"trained": [1] * 12 + [0] * 28, "corpus_only": [1] * 30 + [0] * 10},
            "sft": {"trained": [1] * 32 + [0] * 8, "corpus_only": [1] * 2 + [0] * 38},
        }
    )
    d = decide(rows, _config(), training_s={"sft": 42.0, "rag": None, "base": None})
    by = {v["slice"]: v for v in d["slices"]}
    assert by["trained"]["winner"] == "sft" and by["corpus_only"]["winner"] == "rag"
    t = by["trained"]
    sft_q = {f"trained-{i}": float(i < 32) for i in range(40)}
    rag_q = {f"trained-{i}": float(i < 12) for i in range(40)}
    want = paired_delta(sft_q, rag_q, seed=0, samples=500)
    assert t["runner_up"] == "rag" and t["lead"]["mean"] == want["mean"] == 0.5
    assert t["lead"]["ci95"] == want["ci95"] and t["lead"]["significant"]
    assert t["cost"] == {"training_s": 42.0, "tokens_per_answer": 25}
    assert by["corpus_only"]["cost"] == {"training_s": None, "tokens_per_answer": 75}
    # the sentences carry the numbers
    lo, hi = want["ci95"]
    assert f"+0.50 [{lo:+.2f}, {hi:+.2f}]" in t["sentence"] and "0.80 against 0.30 for rag" in t["sentence"]
    assert "trains for 42 s" in t["sentence"] and "25 tokens an answer (base: 25)." in t["sentence"]
    assert (
        "rag trains nothing and reads and writes 75 tokens an answer (base: 25)."
        in by["corpus_only"]["sentence"]
    )
    assert d["answer"].startswith("Decision: it depends on the knowledge")
    assert "facts in the fine-tuning data: fine-tune (sft)" in d["answer"]
    assert "facts only in the documents: retrieve (rag)" in d["answer"]
    assert d["sentences"][0] == d["answer"] and d["overall"]["n"] == 80


def test_a_lead_within_noise_is_no_clear_winner():
    rows = _rows(
        {
            "base": {"all": [0] * 30},
            "rag": {"all": [1] * 16 + [0] * 14},
            "sft": {"all": [1] * 15 + [0] * 15},
        }
    )
    d = decide(rows, _config(), training_s={"sft": 5.0})
    (v,) = d["slices"]
    assert v["winner"] == "rag" and not v["lead"]["significant"] and v["within_noise"] == ["sft"]
    assert "no clear winner on em" in v["sentence"] and "sft is within noise" in v["sentence"]
    assert "retrieve (rag) or fine-tune (sft), within noise" in d["answer"]


def test_no_slices_decides_on_the_whole_suite():
    rows = [r | {"slice": None} for r in _rows({"base": {"x": [0] * 20}, "rag": {"x": [1] * 20}})]
    d = decide(rows, _config(VARIANTS[:2]), training_s={})
    assert d["slices"] == [] and d["overall"]["winner"] == "rag"
    assert d["answer"].startswith("Decision: retrieve: the suite: retrieve (rag)")
    assert d["sentences"] == [d["answer"], d["overall"]["sentence"]]
    assert d["overall"]["sentence"].startswith("Over all 20 questions, rag wins on em: 1.00 against 0.00")


def test_the_metric_is_the_first_that_pairs_by_question_read_as_its_kind():
    # macro-F1 is a statistic of the whole set: no per-question difference to pair, so f1 decides;
    # f1 is graded (the paired bootstrap, as the summary's deltas) even when every value is 0 or 1
    rows = _rows({"base": {"x": [0] * 20}, "rag": {"x": [1] * 20}}, metric="f1")
    d = decide(rows, _config(VARIANTS[:2], metrics=("macro_f1", "f1")), training_s={})
    assert d["metric"] == "f1" and d["overall"]["lead"]["test"] == "paired bootstrap"
    assert "rag wins on f1: 1.00 against 0.00 for base" in d["overall"]["sentence"]


def test_the_decision_comes_first_in_the_reports_and_last_on_the_console(micro_config):
    from reports.html import write_html

    result = CliRunner().invoke(app, ["bench", "--config", str(micro_config)])
    assert result.exit_code == 0, result.output
    run = micro_config.parent / "runs" / "latest"
    summary = json.loads((run / "summary.json").read_text())
    decision = summary["decision"]
    assert decision["answer"].startswith("Decision:")
    # the console ends with the decision's sentences (wrapped to the terminal's width)
    assert " ".join(result.output.split()).endswith(" ".join(" ".join(decision["sentences"]).split()))

    html = (run / "report.html").read_text()
    assert html.index('id="decision"') < html.index('id="leaderboard"')
    md = (run / "report.md").read_text().split("\n\n")
    assert md[1].startswith("Decision:")

    # variant names are the user's: escaped like everything else
    rows = [json.loads(line) for line in (run / "results.jsonl").open()]
    hostile = "<script>window.pwned=1</script>"
    evil = json.loads(json.dumps(summary).replace('"rag"', json.dumps(hostile)))
    page = micro_config.parent / "evil.html"
    named = [r | {"variant": hostile if r["variant"] == "rag" else r["variant"]} for r in rows]
    evil_variants = [VARIANTS[0], NS(name=hostile, adapter=None, adapter_path=None, retriever="bm25")]
    evil["decision"] = decide(named, _config(evil_variants), training_s={})  # the name in the sentences
    assert hostile in " ".join(evil["decision"]["sentences"])
    write_html(page, rows=rows, summary=evil, manifest=json.loads((run / "manifest.json").read_text()))
    assert hostile not in page.read_text() and "&lt;script&gt;" in page.read_text()
