"""JSON Lines input, validated row by row: one bad row is one line naming the file, the line and
the field (`InputError`), before anything is written; and whole JSON files (`read_json`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InputError, lone_surrogate, read_bytes

if TYPE_CHECKING:
    from suites.schema import Question, Suite

MAX_ROW_BYTES = 1 << 20  # a row over 1 MiB is a broken file, not a question


def read_json(path: Path) -> Any:
    """A whole JSON file (SQuAD, PubMedQA): what it holds, or one line saying why it cannot be read.
    Its text is valid Unicode (see `check_text`)."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"not valid JSON: {e.msg}", line=e.lineno) from None
    except (ValueError, RecursionError) as e:  # digits past Python's limit, nesting past the parser's
        raise InputError(str(path), f"not valid JSON: {_unreadable(e)}") from None
    bad = check_text(data)
    if bad is not None:
        field, message = bad
        raise InputError(str(path), message, line=_escape_line(text), field=field)
    return data


def _read_text(path: Path) -> str:
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(str(path), f"not UTF-8 text (byte {e.start})") from None


def check_text(value: Any) -> tuple[str, str] | None:
    """(field, what is wrong) for the first string in parsed JSON `value` that is not valid Unicode
    (`core.errors.lone_surrogate`), else None."""
    bad = lone_surrogate(value)
    if bad is None:
        return None
    where, what = bad
    field = ".".join(str(p) for p in where) or "(top level)"
    return field, f"not valid Unicode: a lone surrogate {what} (a \\u escape naming half a UTF-16 pair)"


def _unreadable(e: Exception) -> str:
    """Why valid JSON syntax could not be read: a number or a nesting past Python's limits."""
    return "nested too deeply" if isinstance(e, RecursionError) else "a number too long to read"


# A JSON string escape: an escaped backslash (so that `\\\\ud800` is text, no escape), or `\\uXXXX`.
_ESCAPE = re.compile(r"\\\\|\\u([0-9a-fA-F]{4})")


def _escape_line(text: str) -> int | None:
    """The line of JSON `text`'s first `\\u` escape that names a lone surrogate (half of a pair with no
    other half beside it)."""
    pending: tuple[int, int] | None = None  # (start, end) of a high surrogate waiting for its low one
    for m in _ESCAPE.finditer(text):
        code = int(m.group(1), 16) if m.group(1) else -1
        if pending is not None:
            if 0xDC00 <= code <= 0xDFFF and m.start() == pending[1]:
                pending = None
                continue
            return text.count("\n", 0, pending[0]) + 1
        if 0xD800 <= code <= 0xDBFF:
            pending = (m.start(), m.end())
        elif 0xDC00 <= code <= 0xDFFF:
            return text.count("\n", 0, m.start()) + 1
    return None if pending is None else text.count("\n", 0, pending[0]) + 1


def read_jsonl(
    path: str | Path, fields: dict[str, type], *, max_row_bytes: int = MAX_ROW_BYTES
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) for every non-blank line; every field in `fields` must be present
    with that type, and strings must not be blank. A gzip-compressed file is read the same way."""
    path = Path(path)
    name = str(path)
    for number, line in enumerate(_read_bytes(path).split(b"\n"), 1):
        if not line.strip():
            continue
        if len(line) > max_row_bytes:
            raise InputError(name, f"row of {len(line):,} bytes (limit {max_row_bytes:,})", line=number)
        row = _parse_row(line, name, number)
        _check_fields(row, fields, name, number)
        yield number, row


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (`.jsonl.gz`: read whole, as a plain file is)."""
    raw = read_bytes(path)
    if raw[:2] != b"\x1f\x8b":
        return raw
    import gzip
    import zlib

    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(str(path), f"not a readable gzip file ({e})") from None


def _parse_row(line: bytes, name: str, number: int) -> dict:
    """One line's JSON object."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(name, f"not UTF-8 text (byte {e.start} of the line)", line=number) from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(name, f"invalid JSON: {e.msg}", line=number) from None
    except (ValueError, RecursionError) as e:
        raise InputError(name, f"invalid JSON: {_unreadable(e)}", line=number) from None
    if not isinstance(row, dict):
        raise InputError(name, "expected a JSON object", line=number)
    bad = check_text(row)
    if bad is not None:
        raise InputError(name, bad[1], line=number, field=bad[0])
    return row


def _check_fields(row: dict, fields: dict[str, type], name: str, number: int) -> None:
    """Every field present, of its type (a bool is no number), a string not blank."""
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


def load_jsonl_suite(corpus: str | Path, questions: str | Path, *, name: str = "jsonl") -> Suite:
    """A suite from two JSONL files: `corpus` rows {"id", "text"} and `questions` rows {"id",
    "question", "answers": [...], optional "gold_passage_ids": [...], "category"}. Ids must be
    unique and every gold passage id must be in the corpus."""
    from suites.schema import Passage, Suite

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
        if row["id"] in qids:
            raise InputError(str(questions), f"duplicate id {row['id']!r}", line=line, field="id")
        qids.add(row["id"])
        out.append(_question(row, str(questions), line, seen, Path(corpus).name))
    if not out:
        raise InputError(str(questions), "no questions: the suite is empty")
    return Suite(name, tuple(passages), tuple(out))


def _question(row: dict, name: str, line: int, passage_ids: set[str], corpus: str) -> Question:
    """A question row's answers, gold passages (each in the corpus) and category, checked."""
    from suites.schema import Question

    answers = row["answers"]
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise InputError(name, "expected a non-empty list of non-empty strings", line=line, field="answers")
    gold = row.get("gold_passage_ids", [])
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise InputError(name, "expected a list of passage ids", line=line, field="gold_passage_ids")
    for g in gold:
        if g not in passage_ids:
            raise InputError(name, f"passage {g!r} is not in {corpus}", line=line, field="gold_passage_ids")
    category = row.get("category", "")
    if not isinstance(category, str):
        raise InputError(name, "expected str", line=line, field="category")
    return Question(
        row["id"], row["question"].strip(), tuple(a.strip() for a in answers), tuple(gold), category
    )
