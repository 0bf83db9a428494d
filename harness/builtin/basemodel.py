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
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.cache import build_once, cache_root, digest, library_versions
from harness import prompts
from harness.builtin.loop import fit

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

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


def build_base_model(
    spec: BaseModelSpec, *, root: Path | None = None, progress: bool = True, built: list[Path] | None = None
) -> Path:
    """Return the folder of the base model for `spec`, training it first if it is not cached (one run
    at a time: another waits for it, `build_once`); `built` gets the folder when this call trained it."""
    final = base_model_path(spec, root)
    what, ready = f"the built-in base model {final.name}", lambda: is_built(spec, root)
    if build_once(final, lambda tmp: _train(spec, tmp, progress=progress), what=what, ready=ready):
        if built is not None:
            built.append(final)
    return final


def curriculum(spec: BaseModelSpec) -> list[list[dict[str, str]]]:
    """The base model's curriculum in phases, each shuffled, trained in order.

    Phase 1: answer a question from its one passage, mixed with closed-book questions and plain
    passages of the pool (the answer format and the language). Phase 2 (`multi_passage_fraction` of
    the steps, off by default): answer from 1-3 passages that BM25 retrieves from the pool.
    Reading examples draw fresh answers for every pass over the pool, so they cannot be memorised,
    and with `fresh_structure` every pass also reads about new organisations, codes, products and
    people, so the model reads names it has never seen (the trials behind both, and behind the
    embedded bench's `rag` reading one passage: docs/builtin-models.md#the-base-model).
    """
    from suites.builtin import reading_pool

    rng = random.Random(spec.seed)
    base = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale)
    queries = [(i, w) for i, f in enumerate(base) for w in f.wordings]
    total = spec.steps * spec.batch_size
    phase2_n = int(spec.multi_passage_fraction * total)
    contexts = _retrieved_contexts(base, queries, rng) if phase2_n else []
    phase1: list[dict[str, str]] = []
    for fact in base:
        phase1.append(
            {"prompt": prompts.closed_book(rng.choice(fact.wordings)), "completion": " " + fact.answers[0]}
        )
        phase1.append({"prompt": "", "completion": fact.passage})
    phase1_n = max(total - phase2_n, len(phase1))
    reading, phase2 = _reading_rows(spec, base, queries, contexts, phase1_n - len(phase1), phase2_n)
    phase1 += reading
    rng.shuffle(phase1)
    rng.shuffle(phase2)
    return [phase1, phase2]


def _retrieved_contexts(
    base: list[Fact], queries: list[tuple[int, str]], rng: random.Random
) -> list[list[int]]:
    """For each query (fact index, wording), the pool passages phase 2 reads: the top 1-3 that BM25
    retrieves, the gold one always among them."""
    from retrievers.bm25 import BM25Retriever
    from suites.schema import Passage

    contexts: list[list[int]] = []
    ks = [rng.choice((1, 2, 3)) for _ in queries]
    retriever = BM25Retriever([Passage(str(i), f.passage) for i, f in enumerate(base)])
    found_all = retriever.search([w for _, w in queries], max(ks))
    for (i, _), k, found in zip(queries, ks, found_all, strict=True):
        ids = [int(h.passage_id) for h in found[:k]]
        if i not in ids:  # the gold passage is always among the context while learning to read
            ids[rng.randrange(k)] = i
        contexts.append(ids)
    return contexts


def _reading_rows(
    spec: BaseModelSpec,
    base: list[Fact],
    queries: list[tuple[int, str]],
    contexts: list[list[int]],
    phase1_n: int,
    phase2_n: int,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(`phase1_n` one-passage reading rows, `phase2_n` rows reading the retrieved `contexts`), in
    passes over the queries, each pass on a fresh draw of the pool (new answers; with
    `fresh_structure`, new organisations, codes, products and people for phase 1)."""
    from suites.builtin import reading_pool

    phase1: list[dict[str, str]] = []
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
    return phase1, phase2


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
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


def _train(spec: BaseModelSpec, out: Path, *, progress: bool) -> None:
    """Train from scratch with a short loop of our own rather than TRL's SFTTrainer: measured here
    on a 4-layer model at batch 16, the trainer took 0.37 s a step, a bare forward-backward-step
    0.15 s (2.4x), and the trainer shuffles across the curriculum's phases, whose order matters.
    Fine-tuning adapters are to use TRL."""
    from core.device import torch_device
    from suites.builtin import reading_pool

    started = time.time()
    facts = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale)
    tokenizer = train_tokenizer(_fact_texts(facts), spec.vocab_size)
    device = torch_device()
    model = _initial_model(spec, tokenizer, device)
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
    _write_record(spec, out, model, len(sequences), losses, tokens, wall, device)


def _initial_model(spec: BaseModelSpec, tokenizer: PreTrainedTokenizerFast, device: str) -> LlamaForCausalLM:
    """The untrained Llama of `spec` on `device`, its weights drawn from `spec.seed`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

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
    # transformers' typing of `to` (behind a decorator) loses its `self`
    return LlamaForCausalLM(config).to(device)  # type: ignore[arg-type]


def _write_record(
    spec: BaseModelSpec,
    out: Path,
    model: LlamaForCausalLM,
    examples: int,
    losses: list[dict],
    tokens: int,
    wall: float,
    device: str,
) -> None:
    """The build record beside the model: its recipe and key, size, loss curve and speed."""
    record = {
        "kind": "builtin-base",
        "spec": asdict(spec),
        "key": spec.key(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "examples": examples,
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


def pool_draw(base_spec: BaseModelSpec, draw: int) -> list[Fact]:
    """The reading pool's facts of one draw, each draw with new organisations (structure) and answers."""
    from suites.builtin import reading_pool

    return reading_pool(
        base_spec.seed,
        scale=base_spec.pool_scale,
        domain_scale=base_spec.domain_scale,
        draw=draw,
        structure=draw,
    )
