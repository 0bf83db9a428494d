"""JSON Lines input, validated row by row: one bad row is one line naming the file, the line and
the field (`InputError`), before anything is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness.errors import InputError

MAX_ROW_BYTES = 1 << 20  # a row over 1 MiB is a broken file, not a question


def read_jsonl(
    path: str | Path, fields: dict[str, type], *, max_row_bytes: int = MAX_ROW_BYTES
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) for every non-blank line; every field in `fields` must be present
    with that type, and strings must not be blank."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except IsADirectoryError:
        raise InputError(name, "is a folder, not a file") from None
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
            if not isinstance(row[field], kind) or isinstance(row[field], bool):
                raise InputError(
                    name,
                    f"expected {kind.__name__}, got {type(row[field]).__name__}",
                    line=number,
                    field=field,
                )
            if isinstance(row[field], str) and not row[field].strip():
                raise InputError(name, "empty", line=number, field=field)
        yield number, row
