"""A stand-in for a hub instruct model, built in seconds: what users point ragvft at, at toy size.

The folder looks like a Llama-3-style instruct checkpoint on the hub: a byte-level BPE tokenizer (8k
tokens by default) trained on text, a BOS token the tokenizer adds, special tokens for the chat turns,
a Jinja chat template with system, user and assistant roles, an end-of-turn token (`<|eot_id|>`)
distinct from the end-of-sequence token, and a `generation_config.json` listing both as end tokens.
It loads through `from_pretrained` like any hub folder.

With `steps > 0` it is instruction-tuned from scratch on chat conversations over the built-in reading
pool (facts about other organisations, never the domain's): each assistant turn ends with
`<|eot_id|>` and the conversation goes on with another user turn, so a model that ignored the
end-of-turn token would run on into the next turn. With `steps = 0` it is randomly initialised
(`bench/realistic.py`: real dimensions, speed and memory, not quality).

Tests and benchmarks build it; it is never a variant's default model.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from harness.prompts import DEFAULT_SYSTEM, user_turn

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BOS, EOS, EOT, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|pad|>"
HEADER_START, HEADER_END = "<|start_header_id|>", "<|end_header_id|>"
SPECIALS = [PAD, BOS, EOS, HEADER_START, HEADER_END, EOT]

# Llama 3's template, in its essentials: a BOS, then each turn as a header, a blank line, the content
# and the end-of-turn token; the generation prompt opens the assistant's turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
STANDIN_RECORD = "ragvft_standin.json"


@dataclass(frozen=True)
class StandinSpec:
    seed: int = 7
    vocab_size: int = 8192
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2  # grouped-query attention, as Llama 3 has
    intermediate_size: int = 192
    max_length: int = 512  # the model's context
    steps: int = 150  # instruction tuning from scratch; 0: random weights
    batch_size: int = 16
    learning_rate: float = 3e-3
    pool_scale: int = 3  # facts of the reading pool it is tuned on (4 organisations x 5.2 x this)
    domain_scale: int = 4  # the built-in domain whose names the pool avoids
    tokenizer_seeds: int = (
        16  # draws of generated text the tokenizer is trained on (more: a bigger vocabulary)
    )


def train_chat_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with the chat special tokens; it adds BOS to every text, as Llama's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[HEADER_START, HEADER_END, EOT],
        chat_template=CHAT_TEMPLATE,
        model_max_length=None,
    )


def _texts(spec: StandinSpec) -> list[str]:
    """Generated English-like text for the tokenizer: reading pools of several seeds and draws."""
    from suites.builtin import reading_pool

    texts = []
    for s in range(spec.tokenizer_seeds):
        for f in reading_pool(spec.seed + s, scale=40, domain_scale=40, draw=s):
            texts += [f.passage, *f.wordings, *f.answers]
    return texts + [DEFAULT_SYSTEM, "Passages:", "Question:", "system", "user", "assistant"]


def conversations(spec: StandinSpec) -> list[list[dict[str, str]]]:
    """Instruction-tuning conversations: two or three question-answer turns each, with or without the
    passage, with or without a system prompt. Answers drawn afresh per conversation (read, not recalled)."""
    from suites.builtin import reading_pool

    rng = random.Random(spec.seed)
    n = spec.steps * spec.batch_size
    out: list[list[dict[str, str]]] = []
    draw = 0
    while len(out) < n:
        draw += 1
        facts = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale, draw=draw)
        rng.shuffle(facts)
        for i in range(0, len(facts) - 2, 3):
            turns = [{"role": "system", "content": DEFAULT_SYSTEM}] if rng.random() < 0.5 else []
            for f in facts[i : i + rng.choice((2, 3))]:
                passages = [f.passage] if rng.random() < 0.6 else None
                question = user_turn(rng.choice(f.wordings), passages)
                turns += [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": f.answers[0]},
                ]
            out.append(turns)
    return out[:n]


def _tokenised(
    tokenizer: Any, chats: list[list[dict[str, str]]], max_length: int
) -> tuple[list[list[int]], list[list[bool]]]:
    """Each conversation's tokens (the template writes the BOS itself) and which of them are trained
    on: the assistant's answers and their end-of-turn token, as an instruct model is tuned."""
    sequences, targets = [], []
    for chat in chats:
        ids: list[int] = []
        marked: list[bool] = []
        for i in range(len(chat)):
            text = tokenizer.apply_chat_template(chat[: i + 1], tokenize=False)
            new = tokenizer(text, add_special_tokens=False)["input_ids"][len(ids) :]
            ids += new
            marked += [chat[i]["role"] == "assistant"] * len(new)
        header = len(
            tokenizer(f"{HEADER_START}assistant{HEADER_END}\n\n", add_special_tokens=False)["input_ids"]
        )
        starts = [k for k in range(len(ids)) if marked[k] and (k == 0 or not marked[k - 1])]
        for k in starts:  # the assistant's header itself is the template's, not the model's to learn
            for j in range(k, min(k + header, len(ids))):
                marked[j] = False
        sequences.append(ids[:max_length])
        targets.append(marked[:max_length])
    return sequences, targets


def build_standin(out: Path, spec: StandinSpec = StandinSpec(), *, progress: bool = False) -> Path:
    """Write the stand-in instruct model's folder to `out` (created); returns it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from harness.builtin.loop import fit

    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_chat_tokenizer(_texts(spec), spec.vocab_size)
    tokenizer.model_max_length = spec.max_length
    ids = cast("Callable[[str], int]", tokenizer.convert_tokens_to_ids)  # a token in: its one id out
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_length,
        tie_word_embeddings=False,
        bos_token_id=ids(BOS),
        eos_token_id=[ids(EOS), ids(EOT)],
        pad_token_id=ids(PAD),
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    losses: list[dict] = []
    tokens = 0
    if spec.steps:
        sequences, targets = _tokenised(tokenizer, conversations(spec), spec.max_length)
        losses, tokens = fit(
            model,
            sequences,
            steps=spec.steps,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            warmup_ratio=0.05,
            pad_id=tokenizer.pad_token_id,
            label="training the instruct stand-in",
            progress=progress,
            targets=targets,
        )
    model.generation_config = GenerationConfig(
        bos_token_id=ids(BOS), eos_token_id=[ids(EOS), ids(EOT)], pad_token_id=ids(PAD)
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {
        "kind": "instruct-standin",
        "spec": asdict(spec),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": len(tokenizer),
        "tokens": tokens,
        "final_loss": losses[-1]["loss"] if losses else None,
        "wall_time_s": round(time.time() - started, 1),
    }
    (out / STANDIN_RECORD).write_text(json.dumps(record, indent=2))
    return out
