"""Results as a pandas DataFrame: one row per (variant, question), one column per metric."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """Read `results.jsonl` of a run (or `runs/latest`); each score becomes a column (`em`, `f1`, ...)
    and its reason a `<metric>_reason` column. Undetermined scores are NaN."""
    rows = []
    with (Path(run_dir) / "results.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            for metric, score in row.pop("scores").items():
                row[metric] = score["value"]
                row[f"{metric}_reason"] = score["reason"]
            rows.append(row)
    return pd.DataFrame(rows)
