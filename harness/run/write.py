"""The run folder: assembled under a temporary name and renamed into place, then `runs/latest` is
pointed at it, so a failed or killed run leaves no half-written run behind; where it goes is checked
before a run starts (`check_runs_dir`). Also what the manifest records of the machine: git state and
hardware."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from core.cache import digest, replacing
from core.errors import InputError
from reports.export import render_markdown, write_junit
from reports.html import write_html


def write_run(
    runs: Path, rows: list[dict[str, Any]], summary: dict[str, Any], manifest: dict[str, Any]
) -> Path:
    """Write `runs/<run-id>/` (results, summary, manifest, HTML and Markdown reports, JUnit) and point
    `runs/latest` at it; returns the folder. Sets `manifest["run_id"]`. On any failure what was
    written under a temporary name is removed."""
    runs = Path(runs)
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + digest(manifest["config"], 6)
    runs.mkdir(parents=True, exist_ok=True)
    run_id, n = stem, 1
    remove_abandoned(runs)
    while (runs / run_id).exists() or list(runs.glob(f".{run_id}.*.tmp")):  # two runs in one second
        n += 1
        run_id = f"{stem}-{n}"
    tmp = runs / f".{run_id}.{os.getpid()}.tmp"
    tmp.mkdir()
    manifest["run_id"] = run_id
    try:
        _write_files(tmp, rows, summary, manifest)
        final = runs / run_id
        os.rename(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk, say: one line, not a traceback
            raise InputError(str(runs / run_id), f"cannot write the run: {e.strerror or e}") from None
        raise
    _point_latest(runs, run_id)
    return final


def _write_files(
    folder: Path, rows: list[dict[str, Any]], summary: dict[str, Any], manifest: dict[str, Any]
) -> None:
    with (folder / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    write_html(folder / "report.html", rows=rows, summary=summary, manifest=manifest)
    (folder / "report.md").write_text(render_markdown(summary, manifest), encoding="utf-8")
    write_junit(folder / "junit.xml", summary)


def _point_latest(runs: Path, run_id: str) -> None:
    """`runs/latest`, a link, pointed at `run_id` in one step (a link made beside it, renamed over it);
    the link made is removed when that fails."""
    link = runs / f".latest.{os.getpid()}.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(run_id)
    try:
        os.replace(link, runs / "latest")
    except OSError as e:  # checked before the run (`check_runs_dir`): someone put something there since
        link.unlink(missing_ok=True)
        written = f"the run is written ({runs / run_id}), but latest cannot point at it"
        raise InputError(str(runs / "latest"), f"{written}: {e.strerror or e}") from None


def check_output_file(path: Path, option: str) -> None:
    """Before any work: a file a command writes (`option`, e.g. `--junit`) can be written: its folder is
    one this process can write, and it is no folder itself."""
    if path.is_dir():
        raise InputError(str(path), f"{option}: is a folder: name a file")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(str(path), f"{option}: its folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(str(path), f"{option}: its folder {folder} is not writable")


def write_junit_file(path: Path, summary: dict[str, Any]) -> None:
    """The JUnit XML of `summary` at `path`, whole or not at all (`core.cache.replacing`)."""
    try:
        with replacing(path) as tmp:
            write_junit(tmp, summary)
    except OSError as e:
        raise InputError(str(path), f"cannot write it ({e.strerror or e})") from None


def check_runs_dir(runs: Path, source: str, *, latest: bool = True) -> None:
    """Before a run starts: `runs` (the config `source`'s `runs_dir`) is a folder this process can
    write, or one it can make, and (`latest`: for a run that points it there) its `latest` is no folder
    (ragvft keeps a link there). Else an InputError naming it: found after the work, it would lose it."""
    existing = next(p for p in (runs, *runs.parents) if _exists(p))
    made = "" if existing == runs else f"cannot be made: {existing} "
    if not existing.is_dir():
        raise InputError(source, f"{runs} {made}is a file, not a folder", field="runs_dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(source, f"{runs} {made}is not writable", field="runs_dir")
    link = runs / "latest"
    if latest and link.is_dir() and not link.is_symlink():
        raise InputError(
            str(link), "a folder where ragvft keeps a link to the latest run: move it away (or remove it)"
        )


def _exists(path: Path) -> bool:
    """Whether `path` exists (the file system's root does); one in a folder that cannot be looked
    through, as if it did not (the folder then stops the run: it cannot be written)."""
    try:
        return path.exists() or path == path.parent
    except OSError:
        return False


def remove_abandoned(runs: Path) -> None:
    """Remove half-assembled run folders left by processes that were killed (their pid is gone)."""
    for tmp in runs.glob(".*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue  # not ours
        except ProcessLookupError:
            if tmp.is_symlink() or tmp.is_file():
                tmp.unlink(missing_ok=True)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


def git_state(where: Path) -> dict[str, Any]:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )

    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": commit.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
