"""Content-addressed artifact cache: every artifact lives under a key of what determines it, is
built in a temporary folder and renamed into place, so a killed build leaves nothing half-written."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.errors import InputError


def cache_root() -> Path:
    """`RAGVFT_CACHE` if set, else `.ragvft/` in the working directory. The first time a process
    resolves a root it is checked (`prepare`): a file, or a folder it cannot write, is an InputError
    before any work starts, and what killed builds left there is removed."""
    return prepare(Path(os.environ.get("RAGVFT_CACHE", ".ragvft")).resolve(), "RAGVFT_CACHE")


def models_root() -> Path:
    """`RAGVFT_MODELS` if set, else `models/` in the cache: pretrained models fetched from packages
    (`make real-models`) and GGUF files dequantised to folders. The variable keeps them apart from
    a cache that is thrown away (the tests' own) so they are fetched and converted once."""
    env = os.environ.get("RAGVFT_MODELS")
    # models fetched once may be shared read-only: this folder need not be writable
    return prepare(Path(env).resolve(), "RAGVFT_MODELS", writable=False) if env else cache_root() / "models"


def digest(obj: object, n: int = 16) -> str:
    """A stable hash of any JSON-serialisable object."""
    payload = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:n]


def _read_into(h: hashlib._Hash, path: Path) -> None:
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


_prepared: set[Path] = set()  # the roots this process has checked and cleared: once each


def prepare(root: Path, variable: str, *, writable: bool = True) -> Path:
    """`root`, once checked (once a process): a folder (`writable`: one this process can write, or
    make), its databases SQLite ones; else InputError naming it (and `variable`, what set it). Temporary folders
    and files that killed writers left in it are removed first (`remove_abandoned`)."""
    if root in _prepared:
        return root
    what = f"the cache folder ({variable})"
    existing = next(p for p in (root, *root.parents) if _exists(p))
    if existing != root:  # made when something is first built: the folder it goes in must allow it
        what = f"{what} cannot be made: {existing}"
    if not existing.is_dir():
        raise InputError(str(root), f"{what} is a file, not a folder")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(str(root), f"{what} is not writable")
    if existing == root:
        remove_abandoned(root)
        _check_databases(root)
    _prepared.add(root)
    return root


_SQLITE = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database


def _check_databases(root: Path) -> None:
    """Each `*.sqlite` in the cache (the results store) is a SQLite database, or empty: a file that is
    not one, or a folder in its place, stops the run here rather than after hours of training (the
    store checks the rest when it opens: `harness.store.check_store`)."""
    for db in root.glob("*.sqlite"):
        try:
            with db.open("rb") as fh:
                head = fh.read(len(_SQLITE))
        except IsADirectoryError:
            raise InputError(str(db), "a folder where the cache keeps a SQLite database") from None
        except OSError as e:
            raise InputError(str(db), f"cannot read this database of the cache ({e.strerror or e})") from None
        if head and head != _SQLITE:
            raise InputError(
                str(db), "not a SQLite database: move it away, and the next run makes a new one (every "
                "answer is generated again)"
            )


def _exists(path: Path) -> bool:
    """Whether `path` exists; the file system's root always does."""
    try:
        return path.exists() or path == path.parent
    except OSError:  # a folder on the way that cannot be read: as if nothing were there
        return False


def _pid_space() -> str:
    """This machine and the pid namespace this process is in (containers sharing a cache each have
    their own): where a pid names one process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # no /proc (macOS): the host alone
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}/{namespace}".encode()).hexdigest()[:8]


# A temporary name carries its writer: `.<name>.<pid>@<host>.<random>.tmp` (tempfile's random part; the
# host is `_pid_space`), so that a later start can tell one whose writer is gone (`remove_abandoned`).
_HOST = _pid_space()
_WRITER = re.compile(r"\.(\d+)@([0-9a-f]{8})\.[a-z0-9_]+\.tmp$")
OLD_TMP_S = 3600  # a temporary name without its writer (or another host's) is abandoned past this age
OTHER_HOST_TMP_S = 24 * 3600  # another host's or container's (a shared cache): its pid says nothing here


def writer_tag() -> str:
    """This process, as a temporary name carries it: `<pid>@<host>`."""
    return f"{os.getpid()}@{_HOST}"


def remove_abandoned(root: Path) -> list[Path]:
    """Remove the temporary folders and files (`*.tmp`) that killed writers left in the cache: in
    `root` and two folders down (where `building` puts them, beside what it builds). One whose writer
    is named (`writer_tag`) is abandoned when that process is gone; one of another host, or without a
    writer (older ragvft, other writers), when it is older than an hour (a day for another host's).
    Returns what was removed."""
    removed = []
    for folder in _tmp_folders(root):
        for tmp in folder.glob("*.tmp"):
            with contextlib.suppress(OSError):
                if _abandoned(tmp):
                    if tmp.is_dir() and not tmp.is_symlink():
                        shutil.rmtree(tmp)
                    else:
                        tmp.unlink()
                    removed.append(tmp)
    return removed


def _tmp_folders(root: Path) -> list[Path]:
    """`root`, its folders and theirs (never deeper: an artifact's own files are not looked through)."""
    folders, level = [root], [root]
    for _ in range(2):
        level = [
            p for f in level for p in _listing(f) if p.is_dir() and not p.is_symlink() and p.suffix != ".tmp"
        ]
        folders += level
    return folders


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _abandoned(tmp: Path) -> bool:
    """Whether the writer of temporary `tmp` is gone (see `remove_abandoned`)."""
    age = time.time() - tmp.lstat().st_mtime
    named = _WRITER.search(tmp.name)
    if named is None:
        return age > OLD_TMP_S
    if named.group(2) != _HOST:
        return age > OTHER_HOST_TMP_S
    return not _alive(int(named.group(1)))


def writer_alive(tag: str) -> bool:
    """Whether the process `tag` names (`writer_tag`) may still be running: on this host (and pid
    namespace), whether its pid is; another host's cannot be known here, so True."""
    pid, _, host = tag.partition("@")
    return host != _HOST or not pid.isdigit() or _alive(int(pid))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process; or no pid at all
        return True
    return True


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success rename it to `final`, on failure remove it.
    Its name carries this process (`writer_tag`): a killed build's is removed at a later start."""
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.{writer_tag()}."
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():  # another process finished first: keep theirs, it has the same key
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def build_lock(final: Path, what: str | None = None) -> Iterator[None]:
    """Hold the lock of artifact `final` (an exclusive `flock` on `.<name>.lock` beside it): one process
    at a time builds it, on this machine or any sharing the cache's file system. A process that has to
    wait says so once on stderr (`what`: the artifact in words, by default its folder's name). The
    kernel releases the lock of a killed holder, so none is ever stale; the tiny lock files stay."""
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = final.parent / f".{final.name}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: read-only, it locks all the same (locally)
        fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another run building {what or final.name}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def build_once(
    final: Path,
    build: Callable[[Path], object],  # what it returns is not used
    *,
    what: str | None = None,
    ready: Callable[[], bool] | None = None,
) -> bool:
    """Make artifact `final` unless it is there (`ready`, by default whether `final` exists): `build`
    writes it into a temporary folder (`building`), under the artifact's lock (`build_lock`), and the
    presence is checked again once the lock is held, so a process that waited for another's build
    takes its result. Returns whether this process built it (False: it was cached, or another built it)."""
    done = ready or final.exists
    if done():
        return False
    with build_lock(final, what):
        if done():
            return False
        with building(final) as tmp:
            build(tmp)
    return True


@contextlib.contextmanager
def replacing(final: Path) -> Iterator[Path]:
    """Yield a temporary file's path beside `final` (in its folder, which must exist) to write; on
    success it replaces `final` in one step (readable by all, as a shared file is), on any failure it
    is removed: a reader never sees half a file and nothing is left behind. Its name carries this
    process (`writer_tag`), so one a kill left in the cache is removed at a later start."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.{writer_tag()}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(final: Path, text: str) -> None:
    """Write `text` (UTF-8) to `final` through `replacing`: all of it, or nothing and no temporary file."""
    with replacing(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
