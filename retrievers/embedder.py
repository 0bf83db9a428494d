"""Sentence embedders: any sentence-transformers model (hub id or folder), or a small one the project
trains itself, once, on a suite's retrieval pairs.

The built-in embedder is a 2-layer BERT with its own WordPiece vocabulary, mean pooling and
normalisation, trained with sentence-transformers' `MultipleNegativesRankingLoss` (in-batch
negatives, no duplicate texts in a batch) on (question, passage) pairs. It is saved with
`SentenceTransformer.save` and loaded with `SentenceTransformer(path)`, exactly as a hub model.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cache import build_once, cache_root, digest, library_versions

if TYPE_CHECKING:  # the training libraries load only when an embedder is trained or loaded
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import PreTrainedTokenizerFast, TrainerControl, TrainerState, TrainingArguments
    from transformers.trainer_utils import TrainOutput

EMBEDDER_RECORD = "ragvft_embedder.json"


@dataclass(frozen=True)
class EmbedderSpec:
    """Everything that determines the built-in embedder; its cache key hashes this and the data."""

    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    vocab_size: int = 4096
    max_length: int = 256
    epochs: float = 40.0  # on the built-in domain: recall@1 0.57, @10 0.85 (10 epochs: 0.28, 0.49)
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 7


def builtin_embedder_key(spec: EmbedderSpec, pairs: list[tuple[str, str]], corpus: list[str]) -> str:
    return digest(
        {
            "spec": asdict(spec),
            "pairs": digest(pairs, 32),
            "corpus": digest(corpus, 32),
            "libs": library_versions(),
        }
    )


def build_builtin_embedder(
    spec: EmbedderSpec, pairs: list[tuple[str, str]], corpus: list[str], *, progress: bool = True
) -> tuple[Path, str]:
    """(folder, identity) of the built-in embedder for these pairs, trained first if missing.

    `corpus` (every passage text) goes into the tokenizer's vocabulary only.
    """
    if not pairs:
        raise ValueError("the suite has no retrieval training pairs for the built-in embedder")
    key = builtin_embedder_key(spec, pairs, corpus)
    path = cache_root() / "models" / f"builtin-embedder-{key}"
    # trained once: another run sharing the cache waits for it
    build_once(path, lambda tmp: _train(spec, pairs, corpus, tmp, progress=progress), what=f"the {path.name}")
    return path, f"builtin-embedder:{key}"


def load_embedder(
    name_or_path: str | Path, *, device: str | None = None, trust_remote_code: bool = False
) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(name_or_path), device=device, trust_remote_code=trust_remote_code)


def _tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def _train(
    spec: EmbedderSpec, pairs: list[tuple[str, str]], corpus: list[str], out: Path, *, progress: bool
) -> None:
    """Train the built-in embedder into `out` and write its record (`EMBEDDER_RECORD`) beside it."""
    import torch
    from datasets import Dataset

    from core.device import training_precision

    started = time.time()
    torch.manual_seed(spec.seed)
    tokenizer = _tokenizer(corpus + [q for q, _ in pairs], spec.vocab_size)
    base = out / "_bert"
    model = _untrained(spec, tokenizer, base)
    data = Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]})
    use_cpu, bf16 = training_precision()
    steps = int(spec.epochs * -(-len(pairs) // spec.batch_size))
    args = _training_args(spec, out / "_trainer", steps=steps, use_cpu=use_cpu, bf16=bf16)
    trainer, result = _fit(model, args, data, steps=steps, progress=progress)
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    model.save(str(out), create_model_card=False)
    shutil.rmtree(base, ignore_errors=True)
    logs = trainer.state.log_history
    record = {
        "kind": "builtin-embedder",
        "spec": asdict(spec),
        "pairs": len(pairs),
        "steps": trainer.state.global_step,
        "train_runtime_s": round(result.metrics["train_runtime"], 2),
        "wall_time_s": round(time.time() - started, 2),
        "device": "cpu" if use_cpu else "cuda",
        "loss_curve": [{"step": e["step"], "loss": round(e["loss"], 4)} for e in logs if "loss" in e],
        "libraries": library_versions(),
    }
    with contextlib.suppress(OSError):
        (out / EMBEDDER_RECORD).write_text(json.dumps(record, indent=2))


def _untrained(spec: EmbedderSpec, tokenizer: PreTrainedTokenizerFast, base: Path) -> SentenceTransformer:
    """A freshly initialised BERT (saved with its tokenizer under `base`), mean-pooled and normalised."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=spec.hidden_size,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            intermediate_size=4 * spec.hidden_size,
            max_position_embeddings=spec.max_length,
            pad_token_id=tokenizer.pad_token_id,
        ),
        add_pooling_layer=False,
    )
    bert.save_pretrained(base)
    tokenizer.save_pretrained(base)
    return SentenceTransformer(
        modules=[
            Transformer(str(base), max_seq_length=spec.max_length),
            Pooling(spec.hidden_size, "mean"),
            Normalize(),
        ]
    )


def _training_args(
    spec: EmbedderSpec, output_dir: Path, *, steps: int, use_cpu: bool, bf16: bool
) -> SentenceTransformerTrainingArguments:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.training_args import BatchSamplers

    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=spec.epochs,
        per_device_train_batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=spec.seed,
        data_seed=spec.seed,
        save_strategy="no",
        report_to="none",
        logging_steps=max(1, steps // 20),
        disable_tqdm=True,
        use_cpu=use_cpu,
        bf16=bf16,
    )


def _fit(
    model: SentenceTransformer,
    args: SentenceTransformerTrainingArguments,
    data: Dataset,
    *,
    steps: int,
    progress: bool,
) -> tuple[SentenceTransformerTrainer, TrainOutput]:
    """Train with in-batch negatives (`MultipleNegativesRankingLoss`), a progress bar for the steps."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from core.progress import progress_bar

    with progress_bar("training built-in embedder", steps, enabled=progress) as advance:

        class _Advance(TrainerCallback):
            def on_step_end(
                self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
            ) -> None:
                advance(1)

        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
        )
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_Advance())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = trainer.train()
    return trainer, result
