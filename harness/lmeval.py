"""lm-evaluation-harness interop: a suite exported as an lm-eval task folder, and that task run.

`export_task` writes a folder that lm-eval 0.4 loads with `--include_path`: the task's YAML, its
questions as JSON Lines (id, prompt, answers) and a `utils.py` that scores exact match with the
SQuAD normalisation of `judges.exact`, its source copied in so the folder works without ragvft.
The prompts are ragvft's (`harness.prompts`), greedy decoding is cut at the first newline, and the
answer is stripped, as the HF engine does: the same model gives the same answers and the same EM.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

from harness import prompts
from judges import exact
from suites.schema import Suite

_UTILS = '''"""Exact match with the official SQuAD v1.1 normalisation, as ragvft's judges.exact scores it.
Written by ragvft's export; `normalize_answer` is a copy of judges.exact.normalize_answer."""

import re
import string

_PUNCT = set(string.punctuation)


{normalize_answer}

def process_results(doc, results):
    answer = results[0].strip()  # lm-eval cuts at the stop sequence but keeps the leading space
    norm = normalize_answer(answer)
    return {{"exact_match": float(any(norm == normalize_answer(gold) for gold in doc["answers"]))}}
'''

_YAML = """\
# Exported by ragvft: suite {suite} ({digest}), {n} questions, {kind} prompts.
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: prompt
doc_to_target: answers
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: {max_new_tokens}
process_results: !function utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def export_task(
    suite: Suite,
    out_dir: Path,
    *,
    name: str,
    max_new_tokens: int,
    retrieved: dict[str, list[str]] | None = None,
) -> Path:
    """Write the lm-eval task `name` for `suite` into `out_dir`; returns the YAML's path.

    Closed-book prompts, or retrieval-augmented ones when `retrieved` maps every question id to the
    passage texts its prompt reads. Questions without a gold answer are left out (their EM is
    undetermined, not zero). `max_new_tokens` must be set: lm-eval's default of 256 tokens can
    exceed a small model's context. The data file's path in the YAML is absolute (lm-eval resolves
    a relative one against its working directory, not the YAML's folder).
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    questions = [q for q in suite.questions if q.answers]
    data = out_dir / f"{name}.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for q in questions:
            passages = None if retrieved is None else retrieved[q.id]
            row = {"id": q.id, "prompt": prompts.build(q.text, passages), "answers": list(q.answers)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out_dir / "utils.py").write_text(
        _UTILS.format(normalize_answer=inspect.getsource(exact.normalize_answer)), encoding="utf-8"
    )
    yaml_path = out_dir / f"{name}.yaml"
    yaml_path.write_text(
        _YAML.format(
            suite=suite.name,
            digest=suite.digest(),
            n=len(questions),
            kind="closed-book" if retrieved is None else "retrieval-augmented",
            name=name,
            data=json.dumps(str(data)),  # a JSON string is a valid YAML scalar, whatever the path
            max_new_tokens=max_new_tokens,
        ),
        encoding="utf-8",
    )
    return yaml_path


def lmeval_command(task_dir: Path, task: str, *, base: str, adapter: str | None = None) -> str:
    """The `lm_eval` command line that runs an exported task (as `run_lmeval` does)."""
    model_args = f"pretrained={base}" + (f",peft={adapter}" if adapter else "")
    return (
        f"HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 lm_eval --model hf --model_args '{model_args}' "
        f"--include_path {task_dir} --tasks {task} --batch_size 16 --log_samples --output_path lmeval-out"
    )


def run_lmeval(
    task_dir: Path,
    task: str,
    *,
    base: str,
    adapter: str | None,
    batch_size: int = 16,
    limit: int | None = None,
) -> dict:
    """Run an exported task with lm-eval's `hf` model, offline, on CUDA when present.

    Returns {"exact_match": mean, "n": questions, "answers": {question id: stripped answer}}.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's and datasets' bars; ragvft shows its own
    import lm_eval
    from lm_eval.tasks import TaskManager

    from core.device import torch_device

    model_args = {"pretrained": base} | ({"peft": adapter} if adapter else {})
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=[task],
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        batch_size=batch_size,
        device=torch_device(),
        limit=limit,
        log_samples=True,
        bootstrap_iters=0,
        verbosity="ERROR",
    )
    samples = out["samples"][task]
    return {
        "exact_match": out["results"][task]["exact_match,none"],
        "n": len(samples),
        "answers": {s["doc"]["id"]: s["filtered_resps"][0].strip() for s in samples},
    }
