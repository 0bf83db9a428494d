"""Bad input: one exception type, rendered as one line naming the file, line and field (exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(Exception):
    """A problem with a user's file. `str()` is the one-line message the CLI prints."""

    def __init__(self, file: str, message: str, *, line: int | None = None, field: str | None = None):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


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
