"""Seed variance: adapters trained once per seed, intervals over seeds and questions, the spread
between seeds in the report, and `ragvft calibrate` proposing gate margins from the measured noise."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_config
from harness.run import bench
from reports.stats import hierarchical
from tests.conftest import BASE, BENCH_SFT, DROP, RAG, assert_input_error, micro, write_config

SEEDED = micro(
    variants=[BASE, RAG, {"name": "sft", "adapter": "sft"}], training={"seeds": [3, 4], "sft": BENCH_SFT}
)


def test_the_two_stage_interval_widens_with_the_spread_between_seeds():
    rng = np.random.default_rng(0)
    questions = rng.random(200)
    calm = np.stack([questions + rng.normal(0, 0.01, 200) for _ in range(3)])
    shaky = np.stack([questions + shift for shift in (-0.15, 0.0, 0.15)])
    a, b = hierarchical(calm, samples=500), hierarchical(shaky, samples=500)

    def width(ci):
        return ci[1] - ci[0]

    assert a["seed_sd"] < 0.01 and b["seed_sd"] == pytest.approx(0.15)
    assert width(b["ci95"]) > 2 * width(a["ci95"])  # seed noise is in the interval
    assert width(b["question_ci95"]) == pytest.approx(width(a["question_ci95"]), rel=0.2)  # not in this one


def test_adapters_train_once_per_seed_and_the_summary_shows_both_spreads(tmp_path, cache_dir):
    result = bench(load_config(write_config(tmp_path, SEEDED)))
    sft_rows = [r for r in result.rows if r["variant"] == "sft"]
    n = len({r["question_id"] for r in result.rows})
    assert sorted({r["seed"] for r in sft_rows}) == [3, 4] and len(sft_rows) == 2 * n
    assert {r["seed"] for r in result.rows if r["variant"] == "base"} == {None}
    by_seed = result.manifest["adapters"]["sft"]["by_seed"]
    assert set(by_seed) == {"3", "4"} and by_seed["3"]["identity"] != by_seed["4"]["identity"]
    assert result.manifest["seeds"]["training"] == [3, 4]

    s = result.summary["variants"]["sft"]["em"]
    means = [np.mean([r["scores"]["em"]["value"] for r in sft_rows if r["seed"] == seed]) for seed in (3, 4)]
    assert s["seeds"] == 2 and s["seed_means"] == pytest.approx(means)
    assert s["seed_sd"] == pytest.approx(np.std(means, ddof=1))
    assert s["mean"] == pytest.approx(np.mean(means)) and s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    d = result.summary["deltas"]["sft"]["em"]
    assert d["test"] == "hierarchical bootstrap" and d["seeds"] == 2
    assert "between-seed SD" in (result.run_dir / "report.html").read_text()


def test_calibrate_proposes_margins_that_every_pair_of_seeds_passes(tmp_path, cache_dir):
    rules = [
        {"variant": "sft", "metric": "f1", "margin": 0.5},
        {"variant": "rag", "metric": "em", "margin": 0.05, "floor": 0.0},
    ]
    path = write_config(
        tmp_path, SEEDED, training={"seeds": DROP}, gate={"blessed": "none.json", "rules": rules}
    )
    result = CliRunner().invoke(app, ["calibrate", "--config", str(path), "--seeds", "3,4"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "latest"
    calibration = json.loads((run / "calibration.json").read_text())
    sft, rag = calibration["rules"]
    assert sft["seeds"] == 2 and len(sft["pairs"]) == 2  # each seed as the run and as the blessed one
    worst = max(-p["ci95"][0] for p in sft["pairs"])
    assert sft["proposed_margin"] >= worst and sft["proposed_margin"] - worst < 0.01 + 1e-9
    assert rag["seeds"] == 0 and rag["proposed_margin"] == 0.05  # no adapter: nothing moves with the seed
    snippet = yaml.safe_load((run / "margins.yaml").read_text())
    assert snippet["gate"]["rules"][0] == {"variant": "sft", "metric": "f1", "margin": sft["proposed_margin"]}
    assert snippet["gate"]["rules"][1]["floor"] == 0.0
    assert "proposed" in result.output and "sft.f1" in result.output
    bad = CliRunner().invoke(app, ["calibrate", "--config", str(path), "--seeds", "3"])
    assert_input_error(bad, "two or more distinct")
