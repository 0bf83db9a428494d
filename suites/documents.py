"""A folder of plain documents (.txt, .md) as a corpus: each file read as UTF-8 and cut into
passages by `retrievers.chunking`, each chunk's `source` its file's path in the folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError, lone_surrogate
from retrievers.chunking import chunk_documents
from suites.schema import Passage

SUFFIXES = (".txt", ".md")


@dataclass
class Documents:
    """The passages of a folder's documents, and the files left out with the reason."""

    passages: list[Passage]
    files: int
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why it was left out


def read_documents(
    folder: str | Path, *, words: int = 100, overlap: int = 20, what: str = "--docs"
) -> Documents:
    """Every .txt and .md file under `folder` (sorted, recursively), chunked. A file that is not
    UTF-8 text or holds only whitespace is skipped and named in `skipped`; a folder that is missing,
    or has no readable document, is an InputError naming it (`what` is the option or field)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(str(folder), "not a folder" if folder.exists() else "folder not found", field=what)
    docs: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    for path in files:
        name = path.relative_to(folder).as_posix()
        if lone_surrogate(name) is not None:  # bytes that are no UTF-8 in the name: no id can hold it
            skipped[name.encode("utf-8", "backslashreplace").decode()] = "its name is not UTF-8"
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            skipped[name] = f"not UTF-8 text (byte {e.start})"
            continue
        except OSError as e:
            skipped[name] = e.strerror or str(e)
            continue
        if not text.strip():
            skipped[name] = "empty"
            continue
        docs.append((name, text))
    if not docs:
        found = f"{len(files)} .txt/.md files, none readable" if files else "no .txt or .md files"
        first = next(iter(skipped.items()), None)
        why = f" ({first[0]}: {first[1]})" if first else ""
        raise InputError(str(folder), f"no documents to read: {found}{why}", field=what)
    return Documents(chunk_documents(docs, words=words, overlap=overlap), len(files), skipped)
