"""lm-evaluation-harness interop: a suite exported as an lm-eval task folder, and that task run.

`export_task` writes a folder that lm-eval 0.4 loads with `--include_path`: the task's YAML, its
questions as JSON Lines (id, prompt, answers) and a `utils.py` that scores exact match with the
SQuAD normalisation of `judges.exact`, its source copied in so the folder works without ragvft.
The prompts are ragvft's (`harness.prompts`), greedy decoding is cut at the first newline, and the
answer is stripped, as the HF engine does: the same model gives the same answers and the same EM.

`run_lmeval` runs any tasks of a task folder (generation, multiple choice...) and reads every metric
they report, on a model lm-eval loads itself or on one already loaded (`hflm`, the forgetting check's
way: one load of the base, its PEFT adapters switched between runs).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness import prompts
from judges import exact
from suites.schema import Suite

if TYPE_CHECKING:
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import LM
    from lm_eval.models.huggingface import HFLM
    from transformers import PreTrainedTokenizerBase

_UTILS = '''"""Exact match with the official SQuAD v1.1 normalisation, as ragvft's judges.exact scores it.
Written by ragvft's export; `normalize_answer` is a copy of judges.exact.normalize_answer."""

import re
import string

_PUNCT = set(string.punctuation)


{normalize_answer}

def process_results(doc, results):
    answer = results[0].strip()  # lm-eval cuts at the stop sequence but keeps the leading space
    norm = normalize_answer(answer)
    golds = [normalize_answer(gold) for gold in doc["answers"]]
    return {{
        "exact_match": float(any(norm == gold for gold in golds)),
        # the gold answer inside the answer, as whole words (ragvft's `match`): for an answer in a sentence
        "match": float(any(gold and f" {{gold}} " in f" {{norm}} " for gold in golds)),
    }}
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
  - metric: match
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


def hflm(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    *,
    batch_size: int,
    max_length: int | None = None,
) -> LM:
    """lm-eval's `hf` model (`HFLM`) on a model already loaded, a PEFT model included: the forgetting
    check runs every adapter on one load, switching adapters on the model between runs.

    `max_length`, where given, is the longest input lm-eval builds (else the model's config says): a
    soft prompt's virtual tokens take their places in the context before it. (The logits a prompt-
    tuning model returns for them, before the input's, lm-eval's log-likelihood already skips.)"""
    extra = {"max_length": max_length} if max_length is not None else {}
    return _quiet_hflm()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, **extra)


def _quiet_hflm() -> type[HFLM]:
    """lm-eval's `HFLM` with its request bars off: it passes `disable=False` to tqdm itself, which
    overrides TQDM_DISABLE, and its evaluator never asks for `disable_tqdm`."""
    _quiet_offline()
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):
        def loglikelihood(
            self, requests: list[Instance], disable_tqdm: bool = True
        ) -> list[tuple[float, bool]]:
            return super().loglikelihood(requests, disable_tqdm=True)

        def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = True) -> list[float]:
            return super().loglikelihood_rolling(requests, disable_tqdm=True)

        def generate_until(self, requests: list[Instance], disable_tqdm: bool = True) -> list[str]:
            return super().generate_until(requests, disable_tqdm=True)

    return QuietHFLM


def run_lmeval(
    task_dir: Path,
    tasks: list[str],
    model: str | LM,
    *,
    adapter: str | None = None,
    batch_size: int = 16,
    limit: int | None = None,
) -> dict[str, dict]:
    """Run tasks of a task folder through lm-eval, offline: on `model`, an lm-eval model (`hflm`) as it
    stands, or a base folder or hub id that lm-eval's `hf` model loads itself (with `adapter`, a PEFT
    folder, on top), on CUDA when present.

    Returns {task: {"metrics": {metric: value}, "primary": metric, "higher_is_better": bool, "n":
    documents, "answers": {document id: stripped answer}}}: every metric the task reports, named as
    lm-eval names it ("acc", "exact_match", "/filter" appended when not lm-eval's "none" filter),
    the primary being the first (the first of the task's `metric_list`, `acc` for multiple choice);
    answers only for a `generate_until` task.
    """
    _quiet_offline()
    import lm_eval
    from lm_eval.tasks import TaskManager

    from core.device import torch_device

    if isinstance(model, str):
        model_args = {"pretrained": model} | ({"peft": adapter} if adapter else {})
        model = _quiet_hflm()(**model_args, batch_size=batch_size, device=torch_device())
    out = lm_eval.simple_evaluate(
        model=model,
        tasks=list(tasks),
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        limit=limit,
        log_samples=True,
        bootstrap_iters=0,
    )
    return {task: _task_result(out, task) for task in tasks}


def _task_result(out: dict, task: str) -> dict:
    """One task's figures out of `simple_evaluate`'s output (see `run_lmeval`)."""
    metrics = {}
    for key, value in out["results"][task].items():
        name, _, kept = key.partition(",")  # "acc,none": metric, filter; "alias", "sample_len": neither
        if kept and not name.endswith("_stderr") and isinstance(value, int | float):
            metrics[name if kept == "none" else f"{name}/{kept}"] = value
    if not metrics:
        raise ValueError(f"lm-eval task {task!r} reported no metric")
    primary = next(iter(metrics))
    result = {
        "metrics": metrics,
        "primary": primary,
        "higher_is_better": out["higher_is_better"][task].get(primary.split("/")[0], True),
        "n": out["n-samples"][task]["effective"],
    }
    if out["configs"][task]["output_type"] == "generate_until":
        samples = out["samples"][task]
        result["answers"] = {s["doc"].get("id", s["doc_id"]): s["filtered_resps"][0].strip() for s in samples}
    return result


def _quiet_offline() -> None:
    """No hub, no bars, errors only: lm-eval's info lines (and its warning that a loaded model
    ignores the loading arguments, which `hflm` means) would bury ragvft's progress."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's and datasets' bars; ragvft shows its own
    from lm_eval.utils import setup_logging

    setup_logging("ERROR")  # LMEVAL_LOG_LEVEL, when set, still wins
    import lm_eval.evaluator

    lm_eval.evaluator.get_git_commit_hash = _git_hash


def _git_hash() -> str | None:
    """lm-eval's `get_git_commit_hash` (the working directory's commit, recorded in its results) with
    git's "fatal: not a git repository" kept off the console when a run is outside a repository."""
    import subprocess

    from lm_eval.loggers.utils import get_commit_from_path

    try:
        out = subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL)
        return out.strip().decode()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return get_commit_from_path(os.getcwd())
