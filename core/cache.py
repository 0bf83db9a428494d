"""Content-addressed artifact cache: every artifact lives under a key of what determines it, is
built in a temporary folder and renamed into place, so a killed build leaves nothing half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    """`RAGVFT_CACHE` if set, else `.ragvft/` in the working directory."""
    return Path(os.environ.get("RAGVFT_CACHE", ".ragvft")).resolve()


def digest(obj: object, n: int = 16) -> str:
    """A stable hash of any JSON-serialisable object."""
    payload = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:n]


def folder_hash(folder: Path, n: int = 16) -> str:
    """A hash of every file's relative path and bytes under `folder`."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:n]


def model_identity(name_or_path: str, revision: str | None = None) -> str:
    """What a model (causal LM, embedder, adapter folder) is keyed by: a local folder by the hash of
    its files' contents, a hub id by id and revision."""
    folder = Path(name_or_path)
    if folder.is_dir():
        return f"local:{folder_hash(folder)}"
    return f"hub:{name_or_path}@{revision or 'main'}"


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ["torch", "transformers", "tokenizers", "trl", "peft"]
    return {n: version(n) for n in names}


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success rename it to `final`, on failure remove it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():  # another process finished first: keep theirs, it has the same key
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
