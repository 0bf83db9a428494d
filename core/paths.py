"""Paths a config names: written relative to the config's folder, made absolute while it validates.

A field typed `ConfigPath` is a path; `harness.config.load_config` validates with the config's folder
in the validation context (`CONFIG_FOLDER`), and the field comes out absolute. Validated without that
context (a config built in code), the value stays as given. One home for "which fields are paths":
the schema, field by field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

CONFIG_FOLDER = "config_folder"  # the validation context's key: the config file's folder, a Path


def config_folder(info: ValidationInfo) -> Path | None:
    """The folder relative paths are resolved against, when the config validates from a file."""
    return (info.context or {}).get(CONFIG_FOLDER)


def resolve_local(value: str, info: ValidationInfo) -> str:
    """A path the config names, made absolute against the config's folder."""
    folder = config_folder(info)
    if folder is None:
        return value
    try:
        return str((folder / value).resolve())
    except (OSError, RuntimeError) as e:  # a name too long, a symlink loop: a config error, on its line
        raise ValueError(f"{value!r} is no path that can be looked at ({e})") from None


ConfigPath = Annotated[str, AfterValidator(resolve_local)]
