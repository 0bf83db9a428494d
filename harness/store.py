"""The results store: SQLite in WAL mode, one row per generation keyed by the hash of what determines
it (model and adapter identity, the full prompt, decoding settings), and one row per score keyed by
its generation's key, the scorer and the gold answers. Rows are committed in
transactions, so a killed run loses at most the batch in flight and a rerun recomputes nothing else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    latency_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS judge_calls (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    key TEXT PRIMARY KEY,
    value REAL,
    reason TEXT NOT NULL,
    label TEXT
);
"""


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # ragas calls the judge from worker threads; harness.run.judge_backend serialises them with a lock
        self.db = sqlite3.connect(path, timeout=60, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def _where_key_in(self, select: str, keys: Iterable[str]):
        """Rows of `select ... WHERE key IN (keys)`, in chunks under SQLite's variable limit."""
        keys = list(keys)
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            yield from self.db.execute(f"{select} WHERE key IN ({','.join('?' * len(chunk))})", chunk)

    def generations(self, keys: Iterable[str]) -> dict[str, dict]:
        rows = self._where_key_in(
            "SELECT key, answer, tokens_in, tokens_out, latency_s FROM generations", keys
        )
        return {
            key: {"answer": answer, "tokens_in": tin, "tokens_out": tout, "latency_s": lat}
            for key, answer, tin, tout, lat in rows
        }

    def put_generations(self, rows: Iterable[tuple[str, dict]]) -> None:
        """Insert rows in one transaction; a key already present is left as it is (no duplicates)."""
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO generations (key, answer, tokens_in, tokens_out, latency_s) "
                "VALUES (?, ?, ?, ?, ?)",
                [(k, r["answer"], r["tokens_in"], r["tokens_out"], r["latency_s"]) for k, r in rows],
            )

    def scores(self, keys: Iterable[str]) -> dict[str, dict]:
        rows = self._where_key_in("SELECT key, value, reason, label FROM scores", keys)
        return {
            key: {"value": value, "reason": reason} | ({"label": label} if label is not None else {})
            for key, value, reason, label in rows
        }

    def put_scores(self, rows: Iterable[tuple[str, dict]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO scores (key, value, reason, label) VALUES (?, ?, ?, ?)",
                [(k, r["value"], r["reason"], r.get("label")) for k, r in rows],
            )

    def judge_calls(self, keys: Iterable[str]) -> dict[str, str]:
        """The judge's raw replies already stored, by call key (judge identity, prompt)."""
        return dict(self._where_key_in("SELECT key, text FROM judge_calls", keys))

    def put_judge_calls(self, rows: Iterable[tuple[str, str]]) -> None:
        """Store replies in one transaction. Only replies are stored, never failures: a call that
        failed for good (a server error) is tried again by the next run."""
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO judge_calls (key, text) VALUES (?, ?)", list(rows))

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    def close(self) -> None:
        self.db.close()
