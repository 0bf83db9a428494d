"""Release gating: bless a run as the baseline, then check later runs against it.

`bless(run_dir, out)` stores, per variant and metric, the mean and every question's value.
`check(rows, baseline, rules)` applies the config's rules:

* ``margin`` (non-inferiority): the paired 95% bootstrap interval of (this run - blessed) over the
  same questions must have its lower bound at or above ``-margin``. Noise passes; a real drop fails.
* ``floor``: the mean must be at or above ``floor``.

It fails closed: a variant or metric missing from the run or the baseline, an undetermined value,
an empty suite, or questions that differ from the blessed run are failures with their reason.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from reports.stats import determined, paired_delta

BASELINE_FORMAT = "ragvft-baseline-1"


class GateError(Exception):
    """The gate could not be evaluated at all (unreadable run or baseline): exit code 2."""


def read_run(run_dir: Path) -> tuple[list[dict], dict, dict]:
    """(rows, summary, manifest) of a run folder."""
    run_dir = Path(run_dir)
    try:
        rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line]
        summary = json.loads((run_dir / "summary.json").read_text())
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except FileNotFoundError as e:
        raise GateError(f"{run_dir}: not a ragvft run folder ({Path(e.filename).name} missing)") from None
    except json.JSONDecodeError as e:
        raise GateError(f"{run_dir}: unreadable run file: {e}") from None
    return rows, summary, manifest


def per_question(rows: list[dict]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{variant: {metric: {question_id: value}}}."""
    out: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        for m, s in r["scores"].items():
            out[r["variant"]][m][r["question_id"]] = s["value"]
    return out


def bless(run_dir: Path, out: Path) -> dict:
    """Write the blessed baseline of `run_dir` to `out` (atomically) and return it."""
    rows, summary, manifest = read_run(run_dir)
    values = per_question(rows)
    baseline = {
        "format": BASELINE_FORMAT,
        "run_id": manifest.get("run_id"),
        "blessed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": manifest.get("git"),
        "suite": manifest.get("suite"),
        "variants": {
            v: {
                m: {"mean": summary["variants"][v][m]["mean"], "per_question": values[v][m]}
                for m in summary["metrics"]
            }
            for v in summary["variants"]
        },
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(baseline, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a baseline is committed and shared
    os.replace(tmp, out)
    return baseline


def load_baseline(path: Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GateError(
            f"{path}: baseline not found; bless a run first: ragvft bless --run runs/latest --out {path}"
        ) from None
    except json.JSONDecodeError as e:
        raise GateError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise GateError(f"{path}: not a ragvft baseline (format {BASELINE_FORMAT!r} expected)")
    return data


def rule_name(rule: dict, higher_is_better: bool = True) -> str:
    parts = []
    if rule.get("margin") is not None:
        parts.append(f"non-inferior within {rule['margin']:g}")
    if rule.get("floor") is not None:
        parts.append(f"mean {'>=' if higher_is_better else '<='} {rule['floor']:g}")
    return f"{rule['variant']}.{rule['metric']}: " + " and ".join(parts)


def check(
    rows: list[dict],
    baseline: dict,
    rules: list[dict],
    *,
    samples: int = 2000,
    seed: int = 0,
    metric_info: dict | None = None,
) -> dict:
    """Evaluate every rule; the gate passes only if every rule passes. `metric_info` (a summary's)
    gives each metric's direction: for a metric where lower is better, a rise is the regression and
    the floor is a ceiling."""
    current = per_question(rows)
    results = []
    for rule in rules:
        higher = ((metric_info or {}).get(rule["metric"]) or {}).get("higher_is_better", True)
        results.append(
            {
                "rule": rule_name(rule, higher),
                **rule,
                **_check_rule(rule, current, baseline, samples, seed, higher),
            }
        )
    if not rules:
        results.append({"rule": "(no rules)", "passed": False, "reason": "the gate has no rules"})
    failed = [r for r in results if not r["passed"]]
    return {
        "status": "fail" if failed else "pass",
        "blessed_run": baseline.get("run_id"),
        "rules": results,
        "failed": len(failed),
    }


def _check_rule(rule: dict, current, baseline: dict, samples: int, seed: int, higher: bool = True) -> dict:
    v, m = rule["variant"], rule["metric"]
    mine = current.get(v, {}).get(m)
    if mine is None:
        return {"passed": False, "reason": f"variant {v!r} or metric {m!r} is missing from this run"}
    if not mine:
        return {"passed": False, "reason": "the suite is empty: no questions were scored"}
    bad = [q for q, x in mine.items() if not determined(x)]
    if bad:
        return {"passed": False, "reason": f"{len(bad)} undetermined values (e.g. {bad[0]})"}
    mean = sum(mine.values()) / len(mine)
    out: dict = {"mean": mean, "n": len(mine)}
    reasons = []
    if rule.get("floor") is not None and (mean < rule["floor"] if higher else mean > rule["floor"]):
        reasons.append(
            f"mean {mean:.3f} is {'below the floor' if higher else 'above the ceiling'} {rule['floor']:g}"
        )
    if rule.get("margin") is not None:
        blessed = baseline.get("variants", {}).get(v, {}).get(m)
        if blessed is None:
            return out | {"passed": False, "reason": f"{v}.{m} is missing from the blessed baseline"}
        theirs = blessed["per_question"]
        if set(theirs) != set(mine):
            gone, new = len(set(theirs) - set(mine)), len(set(mine) - set(theirs))
            return out | {
                "passed": False,
                "reason": f"questions differ from the blessed run ({gone} missing, {new} new): re-bless",
            }
        ids = sorted(mine)
        d = paired_delta([mine[q] for q in ids], [theirs[q] for q in ids], samples=samples, seed=seed)
        out |= {"blessed_mean": blessed["mean"], "delta": d["mean"], "delta_ci95": d["ci95"]}
        if higher and d["ci95"][0] < -rule["margin"]:
            reasons.append(
                f"dropped {d['mean']:+.3f} against the blessed run (95% interval "
                f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], lower bound below -{rule['margin']:g})"
            )
        if not higher and d["ci95"][1] > rule["margin"]:
            reasons.append(
                f"rose {d['mean']:+.3f} against the blessed run, where lower is better (95% interval "
                f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], upper bound above {rule['margin']:g})"
            )
    return out | {"passed": not reasons, "reason": "; ".join(reasons) or "ok"}
