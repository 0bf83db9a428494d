"""What the built-in models share: the training loop of our own (`fit`: AdamW, warm-up then cosine,
batches in the order given, so a curriculum's phases stay in order; why not TRL's trainer: see
`basemodel._train`) and their greedy answers (`greedy_answers`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor
    from transformers import PreTrainedModel


def fit(
    model: PreTrainedModel,
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


def _marked_loss(model: PreTrainedModel, ids: Tensor, mask: Tensor, marked: Tensor) -> Tensor:
    """Next-token cross-entropy on the marked positions only (a position's logits predict the next)."""
    import torch

    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    want = marked[:, 1:]
    logits = model.get_output_embeddings()(hidden[:, :-1][want])
    return torch.nn.functional.cross_entropy(logits.float(), ids[:, 1:][want])


def greedy_answers(
    model: Any,  # a transformers causal LM (its typing of `generate` rejects every model class)
    tokenizer: Any,
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
