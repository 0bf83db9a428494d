"""The running batch of the HF engine's greedy loop (`HFEngine._decode`): the rows decoded together
and their state, with the three moves of the loop: a batch joins, every row takes a step, rows that
stopped are dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from harness.engines.hf_stops import stopped

if TYPE_CHECKING:
    from torch import Tensor


class Decoder(Protocol):
    """What the running batch uses of its engine (`HFEngine`): its model's passes and its settings,
    read when used (a test may change them on a loaded engine)."""

    tokenizer: Any
    device: str
    batch_size: int  # a joining batch keeps the rows within twice this
    min_rows: int
    _joins: bool  # whether a batch may join a running one (full attention)
    _own_mask: bool  # whether a step passes sdpa's boolean mask, built once a drop

    @property
    def _torch(self) -> Any: ...  # the torch module

    def _left_padded(self, rows: list[list[int]]) -> tuple[Tensor, Tensor]: ...

    def _forward(
        self, ids: Tensor, mask: Tensor | None, positions: Tensor, cache: Any, logit_bias: Tensor | None = None
    ) -> tuple[Any, Tensor, int]: ...

    def _token_tables(self, width: int, device: Any) -> dict: ...


class RunningBatch:
    """The rows the loop decodes together: the KV cache, and per row its attention mask (`full`, the
    steps' columns included), next position, last token, count of new tokens and row of `gen`, where
    its new tokens go (a finished row riding along writes to the sink row, the last one).

    `join` prefills a batch (left-padded, alone, as `generate` does) and adds it to the running rows;
    `step` decodes one token for every row with the cache; `drop` takes out the rows that stopped
    (their rows of the cache, mask and positions; down to the engine's `min_rows`, finished rows riding
    along), so later steps compute only the rows still running. A batch joins when its width is the
    running cache's length (`fits`): after its own prefill, its keys and values line up column for
    column with the running rows', so each row computes what it would alone, and the two batches take
    one forward pass a step instead of two."""

    # per running row (set when the first batch joins)
    nxt: Tensor  # the token it wrote last
    count: Tensor  # how many new tokens it wrote (0 once finished)
    alive: Tensor  # its row of `gen` (the sink once finished)
    positions: Tensor  # the position of its next token
    full: Tensor  # its attention mask, with a column for every step to come
    bias: Tensor  # `full` as the boolean mask sdpa takes for one query (the engine's own mask, padded)

    def __init__(
        self, engine: Decoder, rows: int, max_new: int, stops: list[str], vector: Tensor | None
    ) -> None:
        self.engine, self.max_new, self.vector = engine, max_new, vector
        self.newline, self.others = "\n" in stops, [s for s in stops if s != "\n"]
        self.sink = rows  # the row of `gen` finished rows riding along write to
        pad = engine.tokenizer.pad_token_id
        self.gen = engine._torch.full((rows + 1, max_new), pad, device=engine.device)
        self.cache: Any = None  # transformers' cache of the running rows, once a batch joined
        self.tables: dict = {}  # the stop tables (`hf_stops.token_tables`) for the logits' width
        self.kv = 0  # the cache's length
        self.padded = False  # whether the first batch had padding (one that joins must match: the masks)
        self.first = 0  # the row of `gen` the next joining row takes
        self.running = 0  # rows not finished
        self.live: Tensor | None = None  # which rows still run, or None: all of them

    def fits(self, batch: list[list[int]]) -> bool:
        """Whether `batch` may join now: the first one always; a later one when the model attends to
        all the past, its width is the cache's length, it is padded as the running rows are and the
        rows stay within twice the batch size."""
        if self.cache is None:
            return True
        engine = self.engine
        return bool(
            engine._joins
            and max(map(len, batch)) == self.kv
            and (len(set(map(len, batch))) > 1) == self.padded  # padded alike: the same masks
            and len(self.alive) + len(batch) <= 2 * engine.batch_size
        )

    def join(self, batch: list[list[int]]) -> int:
        """Prefill `batch` and add its rows after the running ones; returns how many rows were running
        before (they made no new token in this pass)."""
        torch, engine = self.engine._torch, self.engine
        ids, mask = engine._left_padded(batch)
        pos = (mask.cumsum(-1) - 1).masked_fill_(mask == 0, 0)  # as `generate` derives them
        new, tok_new, width = engine._forward(ids, mask, pos, None, self.vector)
        rows = torch.arange(self.first, self.first + len(batch), device=ids.device)
        grown = (tok_new, torch.ones_like(rows), rows, pos[:, -1:] + 1)
        self.gen[rows, 0], self.first = tok_new, self.first + len(batch)
        if self.cache is None:
            self.cache, self.kv, self.padded = new, mask.shape[1], not bool(mask.all())
            self.nxt, self.count, self.alive, self.positions = grown
            self.full, old = mask, 0
            self.tables = engine._token_tables(width, ids.device)
        else:
            old = self._merge(new, mask, grown)
        self.full = torch.cat([self.full, self.full.new_ones(len(self.alive), self.max_new)], dim=1)
        return old

    def _merge(self, new: Any, mask: Tensor, grown: tuple[Tensor, Tensor, Tensor, Tensor]) -> int:
        """One cache (of DynamicLayers: full attention) and one set of row states, the running rows
        first; returns how many rows were running."""
        torch = self.engine._torch
        for x, y in zip(self.cache.layers, new.layers, strict=True):
            x.keys, x.values = torch.cat([x.keys, y.keys]), torch.cat([x.values, y.values])
        old = len(self.alive)
        self.full = torch.cat([self.full[:, : self.kv], mask])
        cols = (self.nxt, self.count, self.alive, self.positions)
        self.nxt, self.count, self.alive, self.positions = (
            torch.cat([a, b]) for a, b in zip(cols, grown, strict=True)
        )
        if self.live is not None:
            self.live = torch.cat([self.live, torch.ones_like(grown[2], dtype=torch.bool)])
        return old

    def step(self) -> None:
        """One token for every row, through the cache."""
        engine = self.engine
        step_mask: Tensor | None = self.full[:, : self.kv + 1]
        if engine._own_mask:  # the boolean mask the model would build, built once
            step_mask = self.bias[..., : self.kv + 1] if self.padded else None
        self.cache, self.nxt, _ = engine._forward(
            self.nxt[:, None], step_mask, self.positions, self.cache, self.vector
        )
        self.gen[self.alive, self.count] = self.nxt
        self.kv, self.positions = self.kv + 1, self.positions + 1
        self.count += 1 if self.live is None else self.live

    def finished(self, joined: int | None) -> Tensor:
        """Which rows the last pass ended: an end token, the newline stop, `max_new` tokens, another
        stop string in the text so far. `joined`: after a join, how many rows were running before it
        (they made no new token); None after a step."""
        torch, engine = self.engine._torch, self.engine
        done = stopped(self.tables, self.nxt, self.gen[self.alive], self.count, self.newline)
        done = done | (self.count == self.max_new)
        if self.others:  # a row whose text so far holds another stop string is done too
            texts = engine.tokenizer.batch_decode(
                [r[:c] for r, c in zip(self.gen[self.alive].tolist(), self.count.tolist(), strict=True)],
                skip_special_tokens=True,
            )  # (not counting a last character whose bytes are still coming: "\ufffd" now)
            texts = [t.rstrip("\ufffd").lstrip() for t in texts]  # as `Decoding.finish` reads it
            done |= torch.tensor([any(s in t for s in self.others) for t in texts], device=done.device)
        if joined is not None:
            done[:joined] = False  # the running rows made no new token
        if self.live is not None:
            done &= self.live
        return done

    def drop(self, done: Tensor, joined: bool) -> None:
        """Take the rows that are done out of the batch: the rows still running first, then finished
        ones riding along up to `min_rows` (their tokens go to the sink row)."""
        if not (joined or done.any()):
            return
        engine = self.engine
        still = ~done if self.live is None else self.live & ~done
        self.running = int(still.sum())
        size = max(self.running, engine.min_rows)
        if size < len(self.alive):  # the rows still running first, then finished ones
            keep = still.int().argsort(descending=True, stable=True)[:size].sort().values
            still, self.nxt, self.count, self.alive = still[keep], self.nxt[keep], self.count[keep], self.alive[keep]
            self.positions, self.full = self.positions[keep], self.full[keep]
            self.cache.reorder_cache(keep)  # index_select on the batch
        self.alive, self.count = self.alive.masked_fill(~still, self.sink), self.count.masked_fill(~still, 0)
        self.live = None if self.running == len(self.alive) else still
        if engine._own_mask and self.padded:  # `sdpa_mask` for one query: the padding, as booleans
            self.bias = self.full[:, None, None, :].bool()

    def tokens(self) -> list[list[int]]:
        """The new tokens of every row that joined, in order, padded after each row's stop."""
        return self.gen[: self.first].tolist()
