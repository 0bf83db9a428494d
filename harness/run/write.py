"""The run folder: assembled under a temporary name and renamed into place, then `runs/latest` is
pointed at it, so a failed or killed run leaves no half-written run behind. Also what the manifest
records of the machine: git state and hardware."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

from core.cache import digest
from reports.export import render_markdown, write_junit
from reports.html import write_html


def write_run(runs: Path, rows: list[dict], summary: dict, manifest: dict) -> Path:
    """Write `runs/<run-id>/` (results, summary, manifest, HTML and Markdown reports, JUnit) and point
    `runs/latest` at it; returns the folder. Sets `manifest["run_id"]`."""
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
    with (tmp / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    write_html(tmp / "report.html", rows=rows, summary=summary, manifest=manifest)
    (tmp / "report.md").write_text(render_markdown(summary, manifest), encoding="utf-8")
    write_junit(tmp / "junit.xml", summary)
    final = runs / run_id
    os.rename(tmp, final)
    link = runs / f".latest.{os.getpid()}.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(run_id)
    os.replace(link, runs / "latest")
    return final


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


def git_state(where: Path) -> dict:
    def git(*args):
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


def hardware() -> dict:
    import torch

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
