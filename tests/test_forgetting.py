"""The forgetting check on any lm-eval task: every task of a folder (here one that generates, scored by
exact match, and one multiple choice, scored by accuracy), every metric each reports, run on the run's
one loaded base with its adapters switched, and the same figures as lm-eval's own `hf` model gives
when it loads the base (and the adapter) itself."""

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from harness import prompts
from harness.artifacts import load_suite, primary, resolve_adapters, resolve_model
from harness.config import load_config
from harness.lmeval import export_task, run_lmeval
from harness.run import bench
from harness.run.forgetting import forgetting_check
from suites.schema import Question, Suite
from tests.conftest import BASE, BENCH_SFT, RAG, write_config

LIMIT = 6
# Multiple choice as MMLU lays it out: the shared settings in a template that is no task, included by
# the task's YAML; a group YAML beside them, which the check does not run as a group.
MC_TEMPLATE = """\
output_type: multiple_choice
test_split: test
doc_to_text: prompt
doc_to_choice: choices
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def _outside_tasks(folder: Path, suite) -> None:
    """Two tasks on the SFT training questions (which the adapter learned, so that the figures move):
    `outside_gen` (ragvft's export: greedy answers, exact match) and `outside_mc` (the right answer
    among two others, scored by log-likelihood)."""
    pairs = suite.training.sft[:LIMIT]
    questions = tuple(Question(f"q{i}", p.question, (p.answer,)) for i, p in enumerate(pairs))
    export_task(Suite("outside", (), questions), folder, name="outside_gen", max_new_tokens=10)
    with (folder / "outside_mc.jsonl").open("w") as f:
        for i, p in enumerate(pairs):
            choices, label = [q.answer for q in pairs if q.answer != p.answer][:2], i % 3
            choices.insert(label, p.answer)
            row = {"prompt": prompts.build(p.question, None), "choices": choices, "label": label}
            f.write(json.dumps(row) + "\n")
    (folder / "_mc_template.yaml").write_text(MC_TEMPLATE)
    (folder / "outside_mc.yaml").write_text(
        "include: _mc_template.yaml\ntask: outside_mc\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(folder / 'outside_mc.jsonl'))}\n"
    )
    (folder / "outside.yaml").write_text("group: outside\ntask: [outside_gen, outside_mc]\n")


@pytest.fixture
def loads(monkeypatch):
    """Every model `from_pretrained` loads, ragvft's HF engine's and lm-eval's `hf` model's alike."""
    calls = []
    load = AutoModelForCausalLM.from_pretrained

    def counted(*args, **kwargs):
        calls.append(args[0])
        return load(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counted)
    return calls


def _setup(tmp_path):
    """The config (the micro bench with an SFT variant and generation keys of its own) and the adapter,
    trained before anything counts loads."""
    path = write_config(
        tmp_path,
        generation={"max_new_tokens": 5},
        variants=[BASE, RAG, {"name": "sft", "adapter": "sft"}],
        training={"sft": BENCH_SFT},  # test_lmeval_export's adapter
        forgetting={"tasks": ["outside"], "limit": LIMIT},
    )
    config = load_config(path)
    suite = load_suite(config)
    base = resolve_model(config, {})
    _outside_tasks(tmp_path / "outside", suite)
    adapters, _ = resolve_adapters(config, suite, base, {})
    return config, base, primary(adapters)


def test_every_task_and_metric_on_the_runs_one_load_as_lm_eval_scores_them(tmp_path, cache_dir, loads):
    config, base, adapters = _setup(tmp_path)
    loads.clear()
    result = bench(config)
    assert result.manifest["cache"]["generations_computed"] > 0  # the run's engine loaded to generate...
    assert len(loads) == 1  # ...and the forgetting check ran on it: one load for both
    fg = result.summary["forgetting"]
    assert result.manifest["forgetting"] == {"engine": "the run's hf engine", "runs": fg["runs"]}
    assert fg["runs"] == {"computed": 4, "cached": 0}  # 2 tasks x (base, sft); the group is no task
    assert fg["metric"] == {"outside_gen": "exact_match", "outside_mc": "acc"}
    metrics = fg["metrics"]
    assert set(metrics) == {"outside_gen", "outside_mc"} and set(metrics["outside_mc"]) == {"base", "sft"}
    assert all(set(m) == {"exact_match", "match"} for m in metrics["outside_gen"].values())
    assert all(set(m) == {"acc", "acc_norm"} for m in metrics["outside_mc"].values())
    for task, per in metrics.items():  # the report's figure is the primary metric's, deltas for each
        assert fg["tasks"][task] == {v: m[fg["metric"][task]] for v, m in per.items()}
        changes = {k: per["sft"][k] - per["base"][k] for k in per["base"]}
        assert fg["metric_deltas"][task]["sft"] == changes
        assert fg["deltas"][task]["sft"] == changes[fg["metric"][task]]
    assert metrics["outside_mc"]["sft"]["acc"] > metrics["outside_mc"]["base"]["acc"]  # the adapter ran
    html = (result.run_dir / "report.html").read_text()
    assert 'id="forgetting"' in html and "<td>acc</td>" in html and "<td>exact_match</td>" in html

    # lm-eval's own `hf` model, loading the base and the adapter itself, scores both tasks the same
    for name, adapter in (("base", None), ("sft", str(adapters["sft"].path))):
        theirs = run_lmeval(
            tmp_path / "outside", ["outside_gen", "outside_mc"], base.path, adapter=adapter, limit=LIMIT
        )
        assert {t: r["metrics"] for t, r in theirs.items()} == {t: m[name] for t, m in metrics.items()}, name
        assert theirs["outside_mc"]["n"] == LIMIT

    loads.clear()
    again = bench(load_config(config.source))
    assert again.summary["forgetting"]["runs"] == {"computed": 0, "cached": 4}
    assert again.summary["forgetting"]["metrics"] == metrics
    assert again.manifest["forgetting"]["engine"] == "none (every result cached)"
    assert loads == [] and not again.manifest["engine"]["loaded"]  # nothing to compute: nothing loads


def test_without_the_runs_engine_the_check_loads_the_base_once_for_every_adapter(tmp_path, cache_dir, loads):
    """The path for a run on vLLM, a server or Ray: an HF engine of the check's own, loaded once."""
    config, base, adapters = _setup(tmp_path)
    config = config.model_copy(update={"forgetting": config.forgetting.model_copy(update={"limit": 4})})
    loads.clear()
    fg = forgetting_check(config, base, adapters, {})
    assert len(loads) == 1 and fg["runs"] == {"computed": 4, "cached": 0}
    assert fg["engine"] == "an hf engine of its own (the run's: hf)"
    assert set(fg["metrics"]["outside_mc"]["sft"]) == {"acc", "acc_norm"}


def test_every_metric_is_read_with_its_filter_and_the_first_is_primary():
    """lm-eval's results as a task with two filters reports them (gsm8k's shape): standard errors,
    alias and sizes are no metrics; a filter other than "none" stays in the name."""
    from harness.lmeval import _task_result

    out = {
        "results": {
            "t": {
                "alias": "t",
                "sample_len": 3,
                "exact_match,strict-match": 0.5,
                "exact_match_stderr,strict-match": "N/A",
                "exact_match,flexible-extract": 0.75,
                "exact_match_stderr,flexible-extract": 0.1,
            }
        },
        "higher_is_better": {"t": {"exact_match": True}},
        "n-samples": {"t": {"original": 9, "effective": 3}},
        "configs": {"t": {"output_type": "multiple_choice"}},
    }
    assert _task_result(out, "t") == {
        "metrics": {"exact_match/strict-match": 0.5, "exact_match/flexible-extract": 0.75},
        "primary": "exact_match/strict-match",
        "higher_is_better": True,
        "n": 3,
    }
