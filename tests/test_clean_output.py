"""The console is ragvft's own: a bench that trains adapters, a dense retriever's embedder and a
judge, runs ragas and lm-eval's forgetting check shows only ragvft's progress bars and summary, with
no third-party bars or log lines (tqdm, lm-eval, ragas' parse errors, git outside a repository)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from harness.console import ragas_line
from tests.conftest import BASE, RAG, micro, write_config

CONFIG = micro(
    retrievers={"dense": {"kind": "dense", "embedder": {"builtin": {"epochs": 2}}}},
    variants=[
        BASE,
        RAG,
        {"name": "drag", "retriever": "dense", "k": 2},
        {"name": "sft", "adapter": "sft"},
        {"name": "cpt", "adapter": "cpt"},
    ],
    training={"sft": {"epochs": 2}, "cpt": {"epochs": 1}},
    judge={
        "builtin": {"epochs": 1, "lora_r": 4, "lora_alpha": 8},
        "ragas": ["nonllm_context_precision", "answer_relevancy"],
        "embedder": "dense",
    },
    forgetting={"tasks": ["builtin_reading"], "limit": 8},
)

NOISE = re.compile(
    r"it/s\]|s/it\]|\d+%\||fatal:|failed to parse|Traceback|^(INFO|WARNING|ERROR|DEBUG)\b|Computing widget"
)


def test_a_full_bench_prints_nothing_but_ragvft(tmp_path):
    write_config(tmp_path, CONFIG)
    env = os.environ | {"RAGVFT_CACHE": str(tmp_path / "cache"), "COLUMNS": "100"}
    for name in ("TQDM_DISABLE", "LMEVAL_LOG_LEVEL"):  # what the CLI itself must set
        env.pop(name, None)
    ragvft = Path(sys.executable).with_name("ragvft")
    done = subprocess.run(  # outside any git repository, as a user's working folder may be
        [str(ragvft), "bench", "--config", "bench.yaml"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "latest" / "summary.json").read_text())
    assert summary["forgetting"] and summary["judge_reliability"]  # lm-eval and the judge did run

    noisy = [line for line in (done.stdout + done.stderr).splitlines() if NOISE.search(line)]
    assert noisy == [], noisy
    # every line on stderr is one of ragvft's own progress bars
    stray = [line for line in done.stderr.splitlines() if line.strip() and "━" not in line]
    assert stray == [], stray
    assert "training judge adapter" in done.stderr and "report:" in done.stdout
    # ragas' metrics, which the leaderboard leaves to the report, get a line of their own
    shown = " ".join(done.stdout.split())
    assert " ".join(ragas_line(summary).split()) in shown
    precision = [
        v["nonllm_context_precision"]
        for v in summary["variants"].values()
        if v["nonllm_context_precision"]["n"]
    ]
    assert f"nonllm_context_precision {min(r['mean'] for r in precision):.2f}" in shown


def test_the_ragas_line_gives_each_metrics_range_over_the_variants_it_scored():
    def stat(mean, n, undetermined=0):
        return {"mean": mean, "n": n, "undetermined": undetermined}

    summary = {
        "metrics": ["em", "faithfulness", "answer_relevancy"],
        "metric_info": {
            "em": {"source": "exact"},
            "faithfulness": {"source": "ragas"},
            "answer_relevancy": {"source": "ragas"},
        },
        "variants": {
            "base": {"em": stat(0.1, 4), "faithfulness": stat(None, 0), "answer_relevancy": stat(None, 0)},
            "rag": {
                "em": stat(0.5, 4),
                "faithfulness": stat(0.5, 3, 1),
                "answer_relevancy": stat(None, 0, 4),
            },
            "sft+rag": {
                "em": stat(0.4, 4),
                "faithfulness": stat(0.75, 4),
                "answer_relevancy": stat(None, 0, 4),
            },
        },
    }
    assert ragas_line(summary) == (
        "ragas: faithfulness 0.50–0.75 (2 variants, 1 of 8 undetermined) · "
        "answer_relevancy – (2 variants, 8 of 8 undetermined) (per variant in the report)"
    )
    summary["metrics"] = ["em"]
    assert ragas_line(summary) is None
