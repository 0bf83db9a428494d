"""What an adapter folder says of itself (`adapter_config.json`), read before any engine loads it."""

from __future__ import annotations

import json
from pathlib import Path


def adapter_config(path: str | Path) -> dict:
    """The folder's adapter_config.json; a folder without one is not a PEFT adapter (one-line error)."""
    file = Path(path) / "adapter_config.json"
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is not a PEFT adapter folder: it has no adapter_config.json") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: not valid JSON (line {e.lineno}: {e.msg})") from None


def _name(model: str) -> str:
    """A model's name without where it lives: a folder's last part, a hub id's repository."""
    return Path(model.rstrip("/")).name.lower()


def base_problem(config: dict, base: str) -> str | None:
    """Why an adapter was trained on another base model than `base`, or None. Compared by name (a
    folder's last part, a hub id's repository name), so a hub model and its local download match."""
    trained_on = config.get("base_model_name_or_path")
    if not trained_on or _name(trained_on) == _name(str(base)):
        return None
    return f"trained on the base model {trained_on!r}, not on {base!r}"


# PEFT's prompt-learning types (those whose config says `is_prompt_learning`), read without importing peft
PROMPT_LEARNING = frozenset(
    {"PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING", "CPT", "CARTRIDGE"}
)


def soft_prompt(config: dict) -> bool:
    """Whether an adapter_config.json is a soft prompt's (PEFT prompt learning), not a LoRA's."""
    return config.get("peft_type") in PROMPT_LEARNING
