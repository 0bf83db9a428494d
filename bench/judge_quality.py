"""How well a run's judge judges, against the targets the built-in judge is built to (issue #17).

    .venv/bin/python bench/judge_quality.py [--run runs/latest]

Reads the run's summary.json (every figure is measured on the run's own test answers, which the judge
never trained on) and prints:
- Cohen's kappa of the judge's verdicts with exact match, where exact match is decisive (an exact
  match, or no token in common), on distinct (question, answer) pairs: target >= 0.6;
- position consistency of pairwise verdicts (both orders agree): target >= 0.9;
- the share of planted restatements of the gold answer (currency written out, units, word order,
  templates the judge never trained on) that it accepts and exact match rejects: target >= 0.8;
- pairwise agreement with exact match where exact match tells the two answers apart (one right, one
  wrong): no target in the issue, printed beside consistency because a judge that ties when unsure
  raises its consistency and loses here;
- for every ragas metric the judge writes, the share of rows it left undetermined: target <= 0.1.
Exits 1 when a target is missed, so it can gate a rebuild of the judge.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TARGETS = {"kappa_with_em": 0.6, "position_consistency": 0.9, "planted_accepted": 0.8}
MAX_UNDETERMINED = 0.1
LLM_RAGAS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


def figures(summary: dict) -> dict:
    r = summary.get("judge_reliability") or {}
    out: dict[str, Any] = {
        "kappa_with_em": (r.get("grade") or {}).get("kappa_with_em"),
        "decisive_n": (r.get("grade") or {}).get("decisive_n"),
        "position_consistency": (r.get("pairwise") or {}).get("position_consistency"),
        "consistent_n": (r.get("pairwise") or {}).get("consistent_n"),
        "pairwise_where_em_separates": (r.get("pairwise") or {}).get("agreement_where_em_separates"),
        "em_separated_n": (r.get("pairwise") or {}).get("em_separated_n"),
        "planted_accepted": (r.get("planted") or {}).get("accepted"),
        "planted_n": (r.get("planted") or {}).get("n"),
        "ragas_undetermined": {},
    }
    for metric in LLM_RAGAS:
        n = und = 0
        for scores in summary.get("variants", {}).values():
            if metric in scores:
                n += scores[metric]["n"] + scores[metric]["undetermined"]
                und += scores[metric]["undetermined"]
        if n:
            out["ragas_undetermined"][metric] = {"rate": und / n, "n": n}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/latest"))
    args = parser.parse_args()
    summary = json.loads((args.run / "summary.json").read_text())
    f = figures(summary)
    missed = 0
    counts = {
        "kappa_with_em": "decisive_n",
        "position_consistency": "consistent_n",
        "planted_accepted": "planted_n",
    }
    for name, target in TARGETS.items():
        value = f[name]
        ok = value is not None and value >= target
        missed += not ok
        shown = "n/a" if value is None else f"{value:.3f}"
        print(
            f"{name:22s} {shown:>7s}  (target >= {target}, n {f[counts[name]]})  {'ok' if ok else 'MISSED'}"
        )
    if (value := f["pairwise_where_em_separates"]) is not None:
        print(
            f"{'pairwise vs em':22s} {value:7.3f}  (where exact match tells the answers apart, n {f['em_separated_n']})"
        )
    for metric, u in f["ragas_undetermined"].items():
        ok = u["rate"] <= MAX_UNDETERMINED
        missed += not ok
        print(
            f"{metric + ' undetermined':22s} {u['rate']:7.3f}  (target <= {MAX_UNDETERMINED}, n {u['n']})  "
            f"{'ok' if ok else 'MISSED'}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
