"""Bad input: one exception type, rendered as one line naming the file, line and field (exit code 2)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class InputError(Exception):
    """A problem with a user's file. `str()` is the one-line message the CLI prints."""

    def __init__(
        self, file: str, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = file if line is None else f"{file}:{line}"
        super().__init__(_one_line(f"{where}: {field}: {message}" if field else f"{where}: {message}"))


def _one_line(text: str) -> str:
    """`text` as one printable line: a line break, or half a UTF-16 pair (which no terminal encoding
    writes) a user's file put in a name or a message, escaped."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or a list of the choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(value, choices, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (choices: {', '.join(choices)})" if choices else ""


def known(value: str, choices: Iterable[str], what: str) -> str:
    """`value` if it is among `choices` (a registry's names), else a ValueError naming the closest:
    what a config validator raises for an unknown name."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}{did_you_mean(value, choices)}")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: no character on its own


def lone_surrogate(value: Any) -> tuple[tuple, str] | None:
    """(where, what) of the first string in parsed JSON or YAML `value`, keys included, that is not
    valid Unicode: where as keys and list indexes, what as the offending half of a UTF-16 pair, escaped
    (`\\ud800`). None when every string is. Text decoded from UTF-8 never holds one, but a `\\u`
    escape can name one, and no such text can be written (a cache key, the results store, a report):
    refused where it is read, with its place."""
    todo: list[tuple[tuple, Any]] = [((), value)]
    while todo:  # not recursive: data nested as deep as a parser allows must not overflow the stack
        where, v = todo.pop()
        if isinstance(v, str) and (bad := _surrogate(v)):
            return where, bad
        if isinstance(v, dict):
            for k, item in reversed(v.items()):
                if isinstance(k, str) and (bad := _surrogate(k)):
                    return where, f"{bad} in the key {ascii(k)}"
                todo.append(((*where, k), item))
        elif isinstance(v, list):
            todo.extend(((*where, i), item) for i, item in reversed(list(enumerate(v))))
    return None


def _surrogate(text: str) -> str | None:
    """The first lone surrogate in `text`, escaped (`\\ud800`), or None."""
    bad = None if text.isascii() else _SURROGATE.search(text)
    return None if bad is None else ascii(bad.group())[1:-1]


def read_bytes(path: Path) -> bytes:
    """The bytes of an input file, or an InputError naming it: missing, a folder, or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a folder, not a file") from None
    except OSError as e:
        raise InputError(str(path), f"cannot be read ({e.strerror or e})") from None
