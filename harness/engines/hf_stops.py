"""What ends an answer in the HF engine: end tokens, the newline stop (once the answer has begun: a
newline before any text is skipped, as `Decoding.finish` skips it) and other stop strings, as
boolean tables over token ids (`token_tables`), applied a step at a time (`stopped`) by the decoding
loop and, for the reference path, as `generate`'s stopping criterion (`stop_criterion`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


def token_tables(tokenizer: Any, end_ids: list[int], width: int, device: Any) -> dict:
    """Boolean tables over token ids (`width` of them, the logits' width): `end` (an end token),
    `newline` (its text holds a newline), `lead` (a newline after its leading whitespace: it ends a
    row that has written nothing yet) and `blank` (whitespace or nothing)."""
    import torch

    n = max(width, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    tables = {k: torch.zeros(n, dtype=torch.bool) for k in ("end", "newline", "lead")}
    tables["blank"] = torch.ones(n, dtype=torch.bool)  # ids past the vocabulary write nothing
    for i, t in enumerate(texts):
        tables["newline"][i], tables["lead"][i] = "\n" in t, "\n" in t.lstrip()
        tables["blank"][i] = not t.strip()
    tables["end"][end_ids] = True
    return {k: v.to(device) for k, v in tables.items()}


def stopped(tables: dict, last: Tensor, rows: Tensor, count: Tensor, newline: bool) -> Tensor:
    """Which rows the token just written (`last`) ends: an end token, or with the newline stop a
    newline once the row has written something (a newline before any text does not end the answer,
    it is skipped: answers are stripped). `rows` holds each row's new tokens, `count` how many."""
    if not newline:
        return tables["end"][last]
    import torch

    before = torch.arange(rows.shape[1], device=rows.device)[None, :] < (count - 1)[:, None]
    started = (~tables["blank"][rows] & before).any(1)
    return tables["end"][last] | torch.where(started, tables["newline"][last], tables["lead"][last])


def stop_criterion(tables: dict, start: int, tokenizer: Any, stops: list[str]) -> Any:
    """`generate`'s stopping criterion for the stops, as the decoding loop applies them: the newline
    stop by token (`stopped`), other stop strings in the text so far after its leading whitespace."""
    import torch
    from transformers import StoppingCriteria

    others = [s for s in stops if s != "\n"]

    class Stop(StoppingCriteria):
        def __call__(self, input_ids: Tensor, scores: Tensor, **kwargs: Any) -> Tensor:
            new = input_ids[:, start:]
            count = new.new_full((new.shape[0],), new.shape[1])
            done = stopped(tables, new[:, -1], new, count, "\n" in stops)
            if others:
                texts = tokenizer.batch_decode(new, skip_special_tokens=True)
                hit = [any(s in t.rstrip("\ufffd").lstrip() for s in others) for t in texts]
                done |= torch.tensor(hit, device=done.device)
            return done

    return Stop()
