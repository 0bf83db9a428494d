"""Training methods: one file each (sft.py, dpo.py, cpt.py, raft.py, ...), registered in the plain dict `METHODS`.

A variant's `adapter: NAME` names a key of `METHODS`; its hyperparameters are `training.NAME` in the
config, validated by the method's own config class. An unknown name is a config error at load.
Adding a method is one new file (a `TrainingMethod`: config, data builder, trainer call) and one line
here.
"""

from __future__ import annotations

from collections import ChainMap

from harness.training import cpt, dpo, grpo, judge, kto, orpo, raft, reward, rlhf, sft, soft_prompt
from harness.training.adapters import TRAINING_RECORD, Adapter, AdapterJob, ensure_adapter, existing_adapter
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod

METHODS: dict[str, TrainingMethod] = {
    "sft": sft.METHOD,
    "dpo": dpo.METHOD,
    "cpt": cpt.METHOD,
    "kto": kto.METHOD,
    "orpo": orpo.METHOD,
    "grpo": grpo.METHOD,
    "rlhf": rlhf.METHOD,
    "prompt_tuning": soft_prompt.PROMPT_TUNING,
    "prefix_tuning": soft_prompt.PREFIX_TUNING,
    "raft": raft.METHOD,
}

# Everything `training.<name>` can set: the variants' methods, and what they train first that is not a
# variant itself (RLHF's reward model)
# (a live view: a method registered in METHODS later is a section too)
SECTIONS: ChainMap[str, TrainingMethod] = ChainMap(METHODS, {"reward": reward.METHOD})

JUDGE_METHOD = judge.METHOD  # the built-in judge's adapter (`judge.builtin`), not a variant's method

__all__ = [
    "JUDGE_METHOD",
    "METHODS",
    "SECTIONS",
    "TRAINING_RECORD",
    "Adapter",
    "AdapterJob",
    "AdapterTraining",
    "TrainerInputs",
    "TrainingMethod",
    "ensure_adapter",
    "existing_adapter",
]
