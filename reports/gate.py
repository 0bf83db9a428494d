"""Release gating: check a run against the baseline blessed from an earlier one (`reports.blessed`:
`bless`, `load_baseline`, reading a run folder back).

`check_run(rows, blessed, rules, ...)`, what a gated `ragvft bench` and `ragvft gate` both call, loads
the blessed file and `check`s: it first checks that the run asked the same suite, then applies
the config's rules:

* ``margin`` (non-inferiority): a one-sided test at 2.5%. The 95% interval of (this run - blessed),
  paired by question id, by the metric kind's rule (`reports.stats`), must have its lower bound at or
  above ``-margin`` (for a metric where lower is better: its upper bound at or below ``margin``).
* ``floor``: the mean must be at or above ``floor`` (at or below, where lower is better).

The gate passes only if every rule passes: an intersection-union test, so the chance that it passes
while any one variant truly dropped by more than its margin is at most 2.5%, however many rules.

Status and exit code: "pass" (0); "fail" (1), a rule failed, which includes an undetermined or
missing value on either side; "error" (2), the run and the baseline cannot be compared: a different
suite (questions, gold answers, gold passages or corpus), or a baseline without that record.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.values import determined
from reports.blessed import (
    BASELINE_FORMAT,
    DEFAULT_BLESSED,
    GateError,
    as_baseline,
    bless,
    blessed_file,
    checked_shape,
    load_baseline,
    per_question,
    question_content,
    read_run,
    read_run_files,
    run_fingerprint,
    run_settings,
    suite_fingerprint,
)
from reports.records import Baseline, GateFamily, GateResult, ResultRow, plain
from reports.rows import seed_values
from reports.stats import paired_delta, power, seed_differences, seed_matrix

__all__ = [  # the blessed baseline's names too, as before `reports.blessed` was split off
    "BASELINE_FORMAT",
    "DEFAULT_BLESSED",
    "GateError",
    "as_baseline",
    "bless",
    "blessed_file",
    "check",
    "check_run",
    "load_baseline",
    "per_question",
    "question_content",
    "read_run",
    "read_run_files",
    "rule_name",
    "run_fingerprint",
    "run_settings",
    "suite_differences",
    "suite_fingerprint",
]

RULE_LEVEL = 0.025  # each rule's one-sided level: the lower half of a 95% interval


def rule_name(rule: Mapping[str, Any], higher_is_better: bool = True) -> str:
    parts = []
    if rule.get("margin") is not None:
        parts.append(f"non-inferior within {rule['margin']:g}")
    if rule.get("floor") is not None:
        parts.append(f"mean {'>=' if higher_is_better else '<='} {rule['floor']:g}")
    return f"{rule['variant']}.{rule['metric']}: " + " and ".join(parts)


def suite_differences(rows: list[ResultRow], baseline: Baseline, corpus_digest: str | None) -> list[str]:
    """What differs between the suite this run asked and the blessed one, in words (empty: the same)."""
    blessed = baseline.questions
    if blessed is None:
        return ["the baseline records no question content (blessed by an older ragvft): re-bless it"]
    mine = question_content(rows)
    out = []
    gone, new = sorted(set(blessed) - set(mine)), sorted(set(mine) - set(blessed))
    if gone or new:
        example = (gone or new)[0]
        out.append(f"questions differ ({len(gone)} missing, {len(new)} new, e.g. {example})")
    for part in ("question", "gold answers", "gold passages"):
        changed = sorted(q for q in set(mine) & set(blessed) if mine[q][part] != blessed[q].get(part))
        if changed:
            out.append(f"{len(changed)} questions' {part} changed (e.g. {changed[0]})")
    theirs = (baseline.suite or {}).get("corpus_digest")
    if theirs is not None and corpus_digest is not None and theirs != corpus_digest:
        out.append(f"the corpus changed (digest {theirs} blessed, {corpus_digest} now)")
    return out


def check_run(
    rows: list[ResultRow],
    blessed: Path,
    rules: list[dict[str, Any]],
    *,
    samples: int,
    seed: int,
    metric_info: dict[str, dict[str, Any]],
    corpus_digest: str | None,
) -> GateResult:
    """The gate of one run: its compared rows against the baseline blessed at `blessed`, by `rules`.
    What a gated `ragvft bench` does and `ragvft gate` does again from the run's folder (the other
    keywords: `run_settings`). A GateError, naming the blessed file, when it cannot be evaluated."""
    baseline = load_baseline(blessed)
    try:
        return _evaluate(
            rows, baseline, rules, samples=samples, seed=seed, metric_info=metric_info, corpus_digest=corpus_digest
        )
    except GateError as e:  # a hand-edited or broken run
        raise GateError(f"{blessed}: {e}") from None


def check(
    rows: list[ResultRow],
    baseline: Baseline | Mapping[str, Any],
    rules: list[dict[str, Any]],
    *,
    samples: int = 2000,
    seed: int = 0,
    metric_info: dict[str, dict[str, Any]] | None = None,
    corpus_digest: str | None = None,
) -> dict[str, Any]:
    """Evaluate every rule; the gate passes only if every rule passes. `metric_info` (a summary's)
    gives each metric's kind and direction; `corpus_digest` is this run's, compared with the blessed.
    Returns the result's JSON form (`GateResult.dump`)."""
    blessed = as_baseline(baseline)
    return _evaluate(
        rows, blessed, rules, samples=samples, seed=seed, metric_info=metric_info, corpus_digest=corpus_digest
    ).dump()


@checked_shape("the run or the baseline")
def _evaluate(
    rows: list[ResultRow],
    baseline: Baseline,
    rules: list[dict[str, Any]],
    *,
    samples: int,
    seed: int,
    metric_info: dict[str, dict[str, Any]] | None,
    corpus_digest: str | None,
) -> GateResult:
    info = metric_info or {}
    differences = suite_differences(rows, baseline, corpus_digest) if rows else []
    if differences:
        return GateResult(
            status="error",
            blessed_run=baseline.run_id,
            rules=[{"rule": "same suite as the blessed run", "passed": False, "reason": "; ".join(differences)}],
            failed=1,
            suite_differences=differences,
        )
    current = per_question(rows)
    results = []
    for rule in rules:
        meta = info.get(rule["metric"]) or {}
        higher = meta.get("higher_is_better", True)
        noise = _seed_noise(rows, rule["variant"], rule["metric"])
        checked = _check_rule(rule, current, baseline, samples, seed, higher, meta.get("kind"), noise)
        results.append({"rule": rule_name(rule, higher), **rule, **checked})
    if not rules:
        results.append({"rule": "(no rules)", "passed": False, "reason": "the gate has no rules"})
    failed = [r for r in results if not r["passed"]]
    return GateResult(
        status="fail" if failed else "pass",
        blessed_run=baseline.run_id,
        rules=results,
        failed=len(failed),
        family=_family(results, len(rules)),
    )


def _family(results: list[dict[str, Any]], rules: int) -> GateFamily:
    false_alarms = [
        r["power"]["false_alarm"] for r in results if (r.get("power") or {}).get("false_alarm") is not None
    ]
    no_alarm = 1.0
    for p in false_alarms:
        no_alarm *= 1 - p
    return GateFamily(
        rules=rules,
        rule_level=RULE_LEVEL,
        pass_error=RULE_LEVEL,  # intersection-union: passing needs every rule to pass
        false_alarm_unchanged=1 - no_alarm if false_alarms else None,
    )


def per_question_of(baseline: Baseline) -> dict[str, dict[str, dict[str, float | None]]]:
    return {v: {m: s.per_question or {} for m, s in per.items()} for v, per in baseline.variants.items()}


def _seed_noise(rows: list[ResultRow], variant: str, metric: str) -> Any:
    """The rerun noise measured between this run's training seeds for (variant, metric), if it has
    several seeds (see `reports.stats.seed_differences`)."""
    values = seed_values(plain([r for r in rows if r["variant"] == variant]), metric)
    if len({s for s, _ in values}) < 2:
        return None
    return seed_differences(seed_matrix(values)[0])


def _check_rule(
    rule: dict[str, Any],
    current: dict[str, dict[str, dict[str, float | None]]],
    baseline: Baseline,
    samples: int,
    seed: int,
    higher: bool,
    kind: str | None,
    noise: Any = None,
) -> dict[str, Any]:
    v, m = rule["variant"], rule["metric"]
    mine = current.get(v, {}).get(m)
    if mine is None:
        return {"passed": False, "reason": f"variant {v!r} or metric {m!r} is missing from this run"}
    if not mine:
        return {"passed": False, "reason": "the suite is empty: no questions were scored"}
    bad = [q for q, x in mine.items() if not determined(x)]
    if bad:
        return {"passed": False, "reason": f"{len(bad)} undetermined values in this run (e.g. {bad[0]})"}
    values: dict[str, float] = {q: x for q, x in mine.items() if x is not None}  # every one, determined
    mean = sum(values.values()) / len(values)
    out: dict[str, Any] = {"mean": mean, "n": len(values)}
    reasons = []
    if rule.get("floor") is not None and (mean < rule["floor"] if higher else mean > rule["floor"]):
        reasons.append(
            f"mean {mean:.3f} is {'below the floor' if higher else 'above the ceiling'} {rule['floor']:g}"
        )
    if rule.get("margin") is not None:
        against = _against_blessed(rule, values, baseline, samples, seed, higher, kind, noise)
        if "passed" in against:  # no comparison possible: the rule fails with that reason
            return out | against
        reasons += against.pop("reasons")
        out |= against
    return out | {"passed": not reasons, "reason": "; ".join(reasons) or "ok"}


def _against_blessed(
    rule: dict[str, Any],
    mine: dict[str, float],
    baseline: Baseline,
    samples: int,
    seed: int,
    higher: bool,
    kind: str | None,
    noise: Any,
) -> dict[str, Any]:
    """The non-inferiority test of `rule` against the blessed values: the comparison's figures and
    `reasons` (the rule's failures); or, where the two cannot be compared, a failed result."""
    v, m, margin = rule["variant"], rule["metric"], rule["margin"]
    theirs = per_question_of(baseline).get(v, {}).get(m)
    if theirs is None:
        return {"passed": False, "reason": f"{v}.{m} is missing from the blessed baseline"}
    bad = [q for q, x in theirs.items() if not determined(x)]
    if bad:
        return {"passed": False, "reason": f"{len(bad)} undetermined values in the blessed run (e.g. {bad[0]})"}
    if set(theirs) != set(mine):
        gone, new = len(set(theirs) - set(mine)), len(set(mine) - set(theirs))
        return {
            "passed": False,
            "reason": f"questions differ from the blessed run ({gone} missing, {new} new): re-bless",
        }
    # seed-averaged values are graded whatever the metric: decide by the data's shape, not by chance
    d = paired_delta(mine, theirs, kind="graded" if noise is not None else kind, samples=samples, seed=seed)
    assert d is not None  # the same questions on both sides, every value determined: they pair up
    determined_theirs = [x for x in theirs.values() if x is not None]  # every one (checked above)
    out: dict[str, Any] = {
        "blessed_mean": baseline.variants[v][m].mean,
        "delta": d["mean"],
        "delta_ci95": d["ci95"],
        "test": d["test"],
        "power": power(list(mine.values()), determined_theirs, margin=margin, seed_differences=noise),
    }
    lo, hi = d["ci95"]
    reasons = []
    if higher and lo < -margin:
        reasons.append(
            f"dropped {d['mean']:+.3f} against the blessed run (95% interval "
            f"[{lo:+.3f}, {hi:+.3f}], lower bound below -{margin:g})"
        )
    if not higher and hi > margin:
        reasons.append(
            f"rose {d['mean']:+.3f} against the blessed run, where lower is better (95% interval "
            f"[{lo:+.3f}, {hi:+.3f}], upper bound above {margin:g})"
        )
    return out | {"reasons": reasons}
