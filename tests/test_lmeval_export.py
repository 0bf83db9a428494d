"""lm-eval interop: a suite exported as an lm-eval task gives, under lm-eval's own `hf` model, the
same answers and the same exact match as ragvft's HF engine and scorer, for the base model and for a
LoRA adapter, closed-book and retrieval-augmented; and `ragvft export lm-eval` writes such a task."""

import json
import os
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from harness import prompts
from harness.artifacts import adapter_job
from harness.cli import app
from harness.engines import HFEngine
from harness.lmeval import export_task, run_lmeval
from harness.training import ensure_adapter
from judges import exact_match
from judges.exact import answer_match
from suites.schema import Question
from tests.conftest import BASE, BENCH_SFT, FAST_TRAINING, RAG, assert_input_error, complete, write_config

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
MAX_NEW_TOKENS = 8


def _ragvft(engine: HFEngine, suite, adapter: str | None, retrieved=None) -> tuple[dict, dict]:
    """ragvft's own answers, and its EM and match for the suite's questions (what lm-eval must score)."""
    passages = retrieved or {}
    texts = [prompts.build(q.text, passages.get(q.id)) for q in suite.questions]
    said = complete(engine, texts, adapter, MAX_NEW_TOKENS)
    answers = dict(zip((q.id for q in suite.questions), said, strict=True))
    em = [exact_match(answers[q.id], q.answers).value for q in suite.questions]
    match = [answer_match(answers[q.id], q.answers).value for q in suite.questions]
    return {"exact_match": sum(em) / len(em), "match": sum(match) / len(match)}, answers


def test_exported_task_scores_the_same_under_lm_eval_as_under_ragvft(micro_base, tmp_path):
    config, suite, base = micro_base
    job = adapter_job(config, suite, base, "sft")
    job.hyper = job.hyper | FAST_TRAINING  # test_adapters' SFT adapter, trained once a session
    sft = ensure_adapter(job, progress=False)
    # The suite's 20 test questions and the 14 SFT questions in their training wording, which the
    # adapter answers right: exact match is then not zero for everyone.
    trained = tuple(Question(f"sft-{i}", p.question, (p.answer,)) for i, p in enumerate(suite.training.sft))
    small = replace(suite, questions=suite.questions + trained)
    gold = {q.id: [suite.passage_map()[p].text for p in q.gold_passage_ids] for q in suite.questions}

    closed_dir = export_task(small, tmp_path / "closed", name="ragvft_closed", max_new_tokens=MAX_NEW_TOKENS)
    rag_dir = export_task(
        suite, tmp_path / "rag", name="ragvft_rag", max_new_tokens=MAX_NEW_TOKENS, retrieved=gold
    )
    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("sft", sft.path)
    cases = [
        ("base", closed_dir, small, None, None),
        ("sft", closed_dir, small, "sft", None),
        ("base+rag", rag_dir, suite, None, gold),
    ]
    ems = {}
    for label, yaml_path, s, adapter, retrieved in cases:
        em, answers = _ragvft(engine, s, adapter, retrieved)
        theirs = run_lmeval(
            yaml_path.parent,
            [yaml_path.stem],
            base.path,
            adapter=str(sft.path) if adapter else None,
            batch_size=8,  # lm-eval batches longest first, ragvft shortest first: different batches
        )[yaml_path.stem]
        assert theirs["n"] == len(s.questions), label
        assert theirs["answers"] == answers, label
        assert theirs["metrics"] == em and theirs["primary"] == "exact_match", label
        ems[label] = em
    assert ems["sft"]["exact_match"] > ems["base"]["exact_match"]  # the adapter was applied under lm-eval too


def test_export_lm_eval_command_writes_a_task_lm_eval_loads(micro_config, tmp_path):
    out = tmp_path / "task"
    result = CliRunner().invoke(app, ["export", "lm-eval", "--config", str(micro_config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "lm_eval --model hf --model_args 'pretrained=<base folder>,peft=<adapter folder>'" in result.output
    assert {p.name for p in out.iterdir()} == {"ragvft_micro.yaml", "ragvft_micro.jsonl", "utils.py"}

    from lm_eval.tasks import TaskManager, get_task_dict

    task = get_task_dict(["ragvft_micro"], TaskManager(include_path=str(out), include_defaults=False))
    task = task["ragvft_micro"]
    docs = list(task.test_docs())
    assert len(docs) == 20 and docs[0]["prompt"].startswith("Question: ")
    assert task.doc_to_text(docs[0]) == docs[0]["prompt"]
    gold = docs[0]["answers"][0]
    assert task.process_results(docs[0], [" " + gold + "."]) == {"exact_match": 1.0, "match": 1.0}
    assert task.process_results(docs[0], [f"It is {gold}, I think."]) == {"exact_match": 0.0, "match": 1.0}
    assert task.process_results(docs[0], ["something else"]) == {"exact_match": 0.0, "match": 0.0}


def test_export_lm_eval_help_and_a_missing_config(tmp_path):
    assert CliRunner().invoke(app, ["export", "lm-eval", "--help"]).exit_code == 0
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(app, ["export", "lm-eval", "--config", str(missing), "--out", str(tmp_path)])
    assert assert_input_error(result, "nope.yaml").startswith("error: ")


def test_forgetting_check_runs_lm_eval_on_base_and_each_adapter_and_caches(tmp_path, cache_dir):
    """The bench's forgetting check: the built-in reading probe through lm-eval, base and SFT."""
    from harness.config import load_config
    from harness.run import bench

    path = write_config(
        tmp_path,
        variants=[
            BASE,
            RAG,
            {"name": "sft", "adapter": "sft"},
            {"name": "sft+rag", "adapter": "sft", "retriever": "bm25"},
        ],
        training={"sft": BENCH_SFT},
        forgetting={"tasks": ["builtin_reading"], "limit": 12},
    )
    result = bench(load_config(path))
    fg = result.summary["forgetting"]
    per = fg["tasks"]["builtin_reading"]
    assert set(per) == {"base", "sft", "sft+rag"}  # sft+rag shares sft's adapter, and its figure
    assert per["sft"] == per["sft+rag"] and all(0 <= x <= 1 for x in per.values())
    assert fg["deltas"]["builtin_reading"]["sft"] == per["sft"] - per["base"]
    # The measured values themselves: ragvft's own engine on the probe's prompts gives the same EM as
    # lm-eval did, for the base and for the adapter (a check that returned any number in [0, 1] fails).
    from core.cache import cache_root
    from harness.artifacts import resolve_model

    config = load_config(path)
    base = resolve_model(config, {})
    probe = cache_root() / "probes" / f"reading-v2-{base.spec.key()}-12" / "builtin_reading.jsonl"
    docs = [json.loads(line) for line in probe.read_text().splitlines()]
    engine = HFEngine(base.path, batch_size=16)
    engine.add_adapter("sft", result.manifest["adapters"]["sft"]["path"])
    for name, adapter in (("base", None), ("sft", "sft")):
        answers = complete(engine, [d["prompt"] for d in docs], adapter, config.generation.max_new_tokens)
        em = sum(exact_match(a, d["answers"]).value for a, d in zip(answers, docs, strict=True)) / len(docs)
        assert per[name] == pytest.approx(em), name
    assert fg["runs"] == {"computed": 2, "cached": 0}
    assert 'id="forgetting"' in (result.run_dir / "report.html").read_text()
    again = bench(load_config(path))
    assert again.summary["forgetting"]["runs"] == {"computed": 0, "cached": 2}
    assert again.summary["forgetting"]["tasks"] == fg["tasks"]
