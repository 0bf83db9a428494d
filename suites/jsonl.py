"""JSON Lines input, validated row by row: one bad row is one line naming the file, the line and
the field (`InputError`), before anything is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError

if TYPE_CHECKING:
    from suites.schema import Suite

MAX_ROW_BYTES = 1 << 20  # a row over 1 MiB is a broken file, not a question


def read_jsonl(
    path: str | Path, fields: dict[str, type], *, max_row_bytes: int = MAX_ROW_BYTES
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) for every non-blank line; every field in `fields` must be present
    with that type, and strings must not be blank. A gzip-compressed file is read the same way."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except IsADirectoryError:
        raise InputError(name, "is a folder, not a file") from None
    if raw[:2] == b"\x1f\x8b":  # gzip (`.jsonl.gz`): read whole, as a plain file is
        import gzip
        import zlib

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(name, f"not a readable gzip file ({e})") from None
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        if len(line) > max_row_bytes:
            raise InputError(name, f"row of {len(line):,} bytes (limit {max_row_bytes:,})", line=number)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(name, f"not UTF-8 text (byte {e.start} of the line)", line=number) from None
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(name, f"invalid JSON: {e.msg}", line=number) from None
        if not isinstance(row, dict):
            raise InputError(name, "expected a JSON object", line=number)
        for field, kind in fields.items():
            if field not in row:
                raise InputError(name, "missing field", line=number, field=field)
            if not isinstance(row[field], kind) or (isinstance(row[field], bool) and kind is not bool):
                raise InputError(
                    name,
                    f"expected {kind.__name__}, got {type(row[field]).__name__}",
                    line=number,
                    field=field,
                )
            if isinstance(row[field], str) and not row[field].strip():
                raise InputError(name, "empty", line=number, field=field)
        yield number, row


def load_jsonl_suite(corpus: str | Path, questions: str | Path, *, name: str = "jsonl") -> Suite:
    """A suite from two JSONL files: `corpus` rows {"id", "text"} and `questions` rows {"id",
    "question", "answers": [...], optional "gold_passage_ids": [...], "category"}. Ids must be
    unique and every gold passage id must be in the corpus."""
    from suites.schema import Passage, Question, Suite

    passages: list[Passage] = []
    seen: set[str] = set()
    for line, row in read_jsonl(corpus, {"id": str, "text": str}):
        if row["id"] in seen:
            raise InputError(str(corpus), f"duplicate id {row['id']!r}", line=line, field="id")
        seen.add(row["id"])
        passages.append(Passage(row["id"], row["text"], source=str(row.get("source", ""))))
    out: list[Question] = []
    qids: set[str] = set()
    for line, row in read_jsonl(questions, {"id": str, "question": str, "answers": list}):
        where = {"file": str(questions), "line": line}
        if row["id"] in qids:
            raise InputError(**where, message=f"duplicate id {row['id']!r}", field="id")
        qids.add(row["id"])
        answers = row["answers"]
        if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise InputError(
                **where, message="expected a non-empty list of non-empty strings", field="answers"
            )
        gold = row.get("gold_passage_ids", [])
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
            raise InputError(**where, message="expected a list of passage ids", field="gold_passage_ids")
        for g in gold:
            if g not in seen:
                raise InputError(
                    **where, message=f"passage {g!r} is not in {Path(corpus).name}", field="gold_passage_ids"
                )
        category = row.get("category", "")
        if not isinstance(category, str):
            raise InputError(**where, message="expected str", field="category")
        out.append(
            Question(
                row["id"], row["question"].strip(), tuple(a.strip() for a in answers), tuple(gold), category
            )
        )
    if not out:
        raise InputError(str(questions), "no questions: the suite is empty")
    return Suite(name, tuple(passages), tuple(out))
