"""The built-in tiny base model: a byte-level BPE tokenizer and a small Llama, trained from scratch.

Its curriculum is the reading pool of `suites.builtin` (facts about *other* organisations): answer a
question from BM25-retrieved passages (the exact prompt the `rag` variants use), answer pool facts
closed-book (so it knows the answer format), and plain passages (the language). It never sees a fact
of the domain.

The result is saved with `save_pretrained` and loaded by `harness.engines.load_causal_lm`, the same
`from_pretrained` path a hub model takes.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.cache import building, cache_root, digest, library_versions
from harness import prompts

if TYPE_CHECKING:
    from suites.builtin import Fact

EOS, PAD = "</s>", "<pad>"
BUILD_RECORD = "ragvft_build.json"


@dataclass(frozen=True)
class BaseModelSpec:
    """Everything that determines the built-in base model (its cache key is a hash of this).

    The defaults are the embedded bench's model; tests use far smaller settings.
    """

    seed: int = 7
    pool_scale: int = 40  # reading-pool facts: 4 organisations x 5.2 x pool_scale
    domain_scale: int = 40  # the domain whose names the pool must avoid
    vocab_size: int = 1024
    hidden_size: int = 192
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 576
    max_length: int = 256
    steps: int = 6000
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_ratio: float = 0.05
    multi_passage_fraction: float = 0.0  # phase 2 of the curriculum (see `curriculum`)
    # every pass over the pool reads about new organisations, products and codes (see `curriculum`)
    fresh_structure: bool = True

    def recipe_key(self) -> str:
        """What the model is trained from: the settings and the generated curriculum's version. A
        shipped model (`harness.builtin.shipped`) is matched on this, whatever libraries load it."""
        from suites.builtin import GENERATOR_VERSION

        return digest({"spec": asdict(self), "generator": GENERATOR_VERSION})

    def key(self) -> str:
        """The cache key of a model trained here: the recipe and the libraries that trained it."""
        return digest({"recipe": self.recipe_key(), "libs": library_versions()})


def base_model_path(spec: BaseModelSpec, root: Path | None = None) -> Path:
    """Where the model for `spec` lives in the cache (built or not)."""
    return (root or cache_root()) / "models" / f"builtin-base-{spec.key()}"


def is_built(spec: BaseModelSpec, root: Path | None = None) -> bool:
    return (base_model_path(spec, root) / BUILD_RECORD).exists()


def build_base_model(spec: BaseModelSpec, *, root: Path | None = None, progress: bool = True) -> Path:
    """Return the folder of the base model for `spec`, training it first if it is not cached."""
    final = base_model_path(spec, root)
    if is_built(spec, root):
        return final
    with building(final) as tmp:
        _train(spec, tmp, progress=progress)
    return final


def curriculum(spec: BaseModelSpec) -> list[list[dict[str, str]]]:
    """The base model's curriculum in phases, each shuffled, trained in order.

    Phase 1: answer a question from its one passage, mixed with closed-book questions and plain
    passages of the pool (the answer format and the language). Phase 2 (`multi_passage_fraction` of
    the steps, off by default): answer from 1-3 passages that BM25 retrieves from the pool.
    Reading examples draw fresh answers for every pass over the pool, so they cannot be memorised:
    in a trial here, with fixed answers a model memorised them (domain rag EM 0.00 after 1,500
    steps). With `fresh_structure` every pass also reads about new organisations, codes, products
    and people: with the pool's four organisations alone, a 4-layer model read a held-out draw of the
    pool perfectly (EM 1.00) but the domain's passages, whose names it had never seen, badly (rag EM
    0.34; 0/48 regulation questions, where it wrote a pool code's name). Measured here too: a 2-layer model read its one passage with EM 0.29 after 300 steps,
    but reading from 1-5 BM25 passages stayed at EM 0.05-0.07 after 1,000-1,200 steps, so the
    embedded bench's `rag` reads the top passage.
    """
    from retrievers.bm25 import BM25Retriever
    from suites.builtin import reading_pool
    from suites.schema import Passage

    rng = random.Random(spec.seed)
    base = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale)
    queries = [(i, w) for i, f in enumerate(base) for w in f.wordings]
    total = spec.steps * spec.batch_size
    phase2_n = int(spec.multi_passage_fraction * total)
    contexts: list[list[int]] = []
    if phase2_n:
        ks = [rng.choice((1, 2, 3)) for _ in queries]
        retriever = BM25Retriever([Passage(str(i), f.passage) for i, f in enumerate(base)])
        for (i, _), k, found in zip(queries, ks, retriever.search([w for _, w in queries], max(ks))):
            ids = [int(h.passage_id) for h in found[:k]]
            if i not in ids:  # the gold passage is always among the context while learning to read
                ids[rng.randrange(k)] = i
            contexts.append(ids)
    phase1: list[dict[str, str]] = []
    for fact in base:
        phase1.append(
            {"prompt": prompts.closed_book(rng.choice(fact.wordings)), "completion": " " + fact.answers[0]}
        )
        phase1.append({"prompt": "", "completion": fact.passage})
    phase1_n = max(total - phase2_n, len(phase1))
    phase2: list[dict[str, str]] = []
    draw = 0
    while len(phase1) < phase1_n or len(phase2) < phase2_n:
        draw += 1
        facts = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale, draw=draw)
        fresh = facts
        if spec.fresh_structure and len(phase1) < phase1_n:
            fresh = reading_pool(
                spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale, draw=draw, structure=draw
            )
        for n, (i, wording) in enumerate(queries):
            answer = " " + facts[i].answers[0]
            if len(phase1) < phase1_n:
                f = fresh[i]
                wording = f.wordings[base[i].wordings.index(wording)] if fresh is not facts else wording
                phase1.append(
                    {"prompt": prompts.with_passages(wording, [f.passage]), "completion": " " + f.answers[0]}
                )
            elif len(phase2) < phase2_n:
                context = [facts[j].passage for j in contexts[n]]
                phase2.append({"prompt": prompts.with_passages(wording, context), "completion": answer})
    rng.shuffle(phase1)
    rng.shuffle(phase2)
    return [phase1, phase2]


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (no BOS; `</s>` ends every completion) as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, model_max_length=1024)


def _fact_texts(facts: list[Fact]) -> list[str]:
    return [t for f in facts for t in (f.passage, *f.wordings, *f.answers)] + [
        prompts.with_passages("?", ["."])
    ]


def fit(
    model,
    sequences: list[list[int]],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    pad_id: int,
    label: str,
    progress: bool = True,
    targets: list[list[bool]] | None = None,
) -> tuple[list[dict], int]:
    """Train a causal LM from scratch on token sequences taken in order, `batch_size` a step (AdamW,
    warm-up then cosine, bf16 autocast on CUDA), loss on every token, or on the tokens `targets`
    marks (then the output layer runs on those positions only: with a large vocabulary it is most of
    the cost). Returns (loss curve, tokens)."""
    import torch

    from core.progress import progress_bar

    device = next(model.parameters()).device.type
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, int(warmup_ratio * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
    )
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    losses, tokens, log_every = [], 0, max(1, steps // 50)
    model.train()
    with progress_bar(label, steps, enabled=progress) as advance:
        for step in range(steps):
            batch = sequences[step * batch_size : (step + 1) * batch_size]
            width = max(map(len, batch))
            ids = torch.tensor([x + [pad_id] * (width - len(x)) for x in batch], device=device)
            labels = torch.tensor([x + [-100] * (width - len(x)) for x in batch], device=device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                if targets is None:
                    loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
                else:
                    rows = targets[step * batch_size : (step + 1) * batch_size]
                    marked = torch.tensor([t + [False] * (width - len(t)) for t in rows], device=device)
                    loss = _marked_loss(model, ids, (labels != -100).long(), marked)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += sum(map(len, batch))
            if step % log_every == 0 or step == steps - 1:
                losses.append({"step": step + 1, "loss": round(loss.item(), 4)})
            advance(1)
    return losses, tokens


def _marked_loss(model, ids, mask, marked):
    """Next-token cross-entropy on the marked positions only (a position's logits predict the next)."""
    import torch

    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    want = marked[:, 1:]
    logits = model.get_output_embeddings()(hidden[:, :-1][want])
    return torch.nn.functional.cross_entropy(logits.float(), ids[:, 1:][want])


def _train(spec: BaseModelSpec, out: Path, *, progress: bool) -> None:
    """Train from scratch with a short loop of our own rather than TRL's SFTTrainer: measured here
    on a 4-layer model at batch 16, the trainer took 0.37 s a step, a bare forward-backward-step
    0.15 s (2.4x), and the trainer shuffles across the curriculum's phases, whose order matters.
    Fine-tuning adapters are to use TRL."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.device import torch_device
    from suites.builtin import reading_pool

    started = time.time()
    facts = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale)
    tokenizer = train_tokenizer(_fact_texts(facts), spec.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_length,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(spec.seed)
    device = torch_device()
    model = LlamaForCausalLM(config).to(device)
    phases = curriculum(spec)
    # Loss on every token: the questions repeat names from the passages, which teaches copying too.
    texts = [e["prompt"] + e["completion"] + EOS for phase in phases for e in phase]
    sequences = [ids[: spec.max_length] for ids in tokenizer(texts)["input_ids"]]
    losses, tokens = fit(
        model,
        sequences,
        steps=spec.steps,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        warmup_ratio=spec.warmup_ratio,
        pad_id=tokenizer.pad_token_id,
        label="training built-in base model",
        progress=progress,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    wall = time.time() - started
    record = {
        "kind": "builtin-base",
        "spec": asdict(spec),
        "key": spec.key(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "examples": len(sequences),
        "steps": spec.steps,
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "final_loss": losses[-1]["loss"],
        "loss_curve": losses,
        "wall_time_s": round(wall, 1),
        "device": device,
        "libraries": library_versions(),
    }
    (out / BUILD_RECORD).write_text(json.dumps(record, indent=2))


def greedy_answers(
    model,
    tokenizer,
    texts: list[str],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 32,
    limit: int | None = None,
    first_line: bool = True,
) -> list[str]:
    """Greedy answers, each cut at its first line break (as the bench reads an answer) unless
    `first_line` is False; a prompt longer than `limit` tokens loses its beginning, as the engine cuts
    it."""
    import torch

    tokenizer.padding_side = "left"
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        ids = [tokenizer(t)["input_ids"][-limit if limit else 0 :] for t in texts[i : i + batch_size]]
        batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for row in gen[:, batch["input_ids"].shape[1] :]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            out.append(text.strip().split("\n")[0].strip() if first_line else text)
    return out


def pool_draw(base_spec: BaseModelSpec, draw: int):
    """The reading pool's facts of one draw, each draw with new organisations (structure) and answers."""
    from suites.builtin import reading_pool

    return reading_pool(
        base_spec.seed,
        scale=base_spec.pool_scale,
        domain_scale=base_spec.domain_scale,
        draw=draw,
        structure=draw,
    )
