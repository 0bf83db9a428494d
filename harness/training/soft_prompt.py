"""Soft prompts: PEFT prompt tuning (Lester et al. 2021: trained embeddings of a few virtual tokens
put before the input) and prefix tuning (Li & Liang 2021: trained keys and values of a few virtual
tokens at every layer), through TRL's `SFTTrainer` on SFT's rows, the loss on the answer alone. The
base stays frozen and the adapter is a few thousand numbers.

A soft prompt is not a LoRA: the method supplies its own PEFT config (`TrainingMethod.peft`), the
adapter's kind is "prompt", and it generates on an engine of its own with `model.generate`, never
beside the LoRA adapters of the shared engine (see `harness.run.generate`). Only the in-process `hf`
engine serves one: vLLM and OpenAI-compatible servers load LoRA adapters alone, which the config
load checks (`harness.config.load`). LoRA's settings mean nothing here, and setting one is a one-line
error naming it (`problem`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from harness.prompts import DEFAULT_SYSTEM
from harness.training.method import AdapterTraining, TrainingMethod
from harness.training.sft import sft_rows, sft_trainer

if TYPE_CHECKING:
    from peft import PrefixTuningConfig, PromptTuningConfig

# The settings that shape a LoRA or a full fine-tune, which a soft prompt has none of
LORA_ONLY = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")


class SoftPromptTraining(AdapterTraining):
    """A soft prompt of `num_virtual_tokens` trained on the suite's question-answer pairs (loss on the
    answer only), the base frozen."""

    SECTION: ClassVar[str]  # the method's `training.<name>`, which the one-line errors name

    # Soft prompts take a far higher rate than a LoRA, and more epochs buy little: a frozen base with
    # a few thousand trained numbers learns the answers' form more than the facts (measured:
    # docs/methods.md#prompt-and-prefix-tuning).
    epochs: float = Field(20, gt=0)
    learning_rate: float = Field(3e-2, gt=0)
    num_virtual_tokens: int = Field(
        20, ge=1, description="Virtual tokens the soft prompt holds (each takes a place in the context)."
    )
    # wider than AdapterTraining's on purpose: only a soft prompt's config accepts "prompt"
    finetune: Literal["lora", "full", "prompt"] = Field(  # type: ignore[assignment]
        "prompt", description="Always prompt: a soft prompt on the frozen base (lora and full are refused)."
    )
    shuffle_answers: bool = Field(
        False, description="Negative control: train on answers shuffled across questions."
    )

    # The `model` profile, from PEFT's soft-prompt guide (task_guides/prompt_based_methods.md: prompt,
    # prefix and p-tuning of bloomz-560m alike at lr 3e-2, 16 rows a step, 20 virtual tokens, 50 epochs
    # of 50 rows, some 200 steps) and Lester et al. 2021 (20 tokens: longer prompts gain little). 10
    # epochs of a suite's few hundred pairs at 16 rows a step is some hundreds of steps, the guide's
    # order: a soft prompt needs many more steps than a LoRA (3 epochs). No LoRA setting: a soft
    # prompt reads none, and `problem` refuses the ones a user sets.
    MODEL: ClassVar[dict[str, Any]] = {
        "epochs": 10,
        "learning_rate": 3e-2,
        "batch_size": 4,
        "gradient_accumulation_steps": 4,
        "max_length": None,
    }

    def problem(self) -> str | None:
        """A LoRA-only setting the user gave (`model_fields_set`: the profile's defaults hold none), or
        a finetune other than prompt."""
        where = f"training.{self.SECTION}"
        given = [f for f in LORA_ONLY if f in self.model_fields_set]
        if given:
            return (
                f"{where}.{given[0]} is a LoRA setting and a soft prompt has no LoRA: remove it (a soft "
                "prompt's size is num_virtual_tokens), or train a LoRA with adapter: sft"
            )
        if self.finetune != "prompt":
            return (
                f"{where}.finetune: {self.finetune} does not apply to a soft prompt, which trains the prompt "
                "alone on the frozen base: remove it, or use adapter: sft for a LoRA or a full fine-tune"
            )
        return None

    def settings(self) -> dict[str, Any]:
        """Every setting but LoRA's, which a soft prompt never reads: its key, record and manifest."""
        return {k: v for k, v in super().settings().items() if k not in LORA_ONLY}


class PromptTuningTraining(SoftPromptTraining):
    """Prompt tuning: trained input embeddings of virtual tokens before every prompt."""

    SECTION = "prompt_tuning"

    # Gradient checkpointing stays on, as for a LoRA: the gradient still flows back through every
    # layer to the input embeddings, so the activations are what the memory holds (checked: it trains
    # the same weights with it on or off).
    init: Literal["text", "random"] = Field(
        "text",
        description="How the virtual tokens start: text, the embeddings of `init_text`'s tokens (repeated "
        "or cut to num_virtual_tokens); random: PEFT's random init.",
    )
    init_text: str = Field(
        DEFAULT_SYSTEM, min_length=1, description="The task description the text init embeds."
    )
    # text by default: Lester et al. (2021) found initialising from real token embeddings (class
    # labels, or sampled vocabulary) trains faster and better than a random init, above all for smaller
    # models, and PEFT's soft-prompt guide starts from a task description ("Classify if the tweet is a
    # complaint or no complaint."). The default text is the one that already describes this task, the
    # chat prompts' system prompt (`harness.prompts.DEFAULT_SYSTEM`). On the micro model 60 epochs at
    # 1e-1 end at loss 2.30 from it and 2.37 from a random init.


class PrefixTuningTraining(SoftPromptTraining):
    """Prefix tuning: trained keys and values of virtual tokens at every layer."""

    SECTION = "prefix_tuning"

    learning_rate: float = Field(1e-1, gt=0)  # lower losses than 3e-2 on both models (docs/methods.md)
    # Off, and it must stay off (`problem`): under gradient checkpointing transformers' decoder layers
    # drop the `past_key_values` they are given (GradientCheckpointingLayer), and those carry the
    # prefix, so the attention mask PEFT widened for it no longer fits: "The size of tensor a (31)
    # must match the size of tensor b (51)" (transformers 5.23, peft 0.21.2).
    gradient_checkpointing: bool = Field(
        False, description="Must stay false: checkpointed layers drop the prefix (the past key values)."
    )
    prefix_projection: bool = Field(
        False,
        description="Train the prefix through a two-layer MLP (Li & Liang's reparameterisation, more "
        "parameters), as PEFT's `prefix_projection`; false: the keys and values themselves.",
    )

    def problem(self) -> str | None:
        if self.gradient_checkpointing:
            return (
                f"training.{self.SECTION}.gradient_checkpointing does not work with prefix tuning "
                "(checkpointed layers drop the past key values that carry the prefix): set it to false"
            )
        return super().problem()


def prompt_tuning_config(hyper: dict, base_path: str, revision: str | None) -> PromptTuningConfig:
    """PEFT's `PromptTuningConfig`: text init tokenises `init_text` with the base's own tokenizer."""
    from peft import PromptTuningConfig, PromptTuningInit

    text = hyper["init"] == "text"
    return PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=hyper["num_virtual_tokens"],
        prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=hyper["init_text"] if text else None,
        tokenizer_name_or_path=base_path if text else None,
        tokenizer_kwargs={"revision": revision} if text and revision else None,
    )


def prefix_tuning_config(hyper: dict, base_path: str, revision: str | None) -> PrefixTuningConfig:
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=hyper["num_virtual_tokens"],
        prefix_projection=hyper["prefix_projection"],
    )


PROMPT_TUNING = TrainingMethod(
    name="prompt_tuning",
    config=PromptTuningTraining,
    data=sft_rows,  # SFT's rows: its `hyper` reads only `shuffle_answers`
    trainer=sft_trainer,  # SFTTrainer with `peft_config`: here the soft prompt's
    peft=prompt_tuning_config,
    adapter_kind="prompt",
)

PREFIX_TUNING = TrainingMethod(
    name="prefix_tuning",
    config=PrefixTuningTraining,
    data=sft_rows,
    trainer=sft_trainer,
    peft=prefix_tuning_config,
    adapter_kind="prompt",
)
