"""Release gating: bless a run as the baseline, then check later runs against it.

`bless(run_dir, out)` stores, per variant and metric, the mean and every question's value, and what
each question was (a digest of its text, its gold answers and its gold passages) with the corpus's
digest. `check(rows, baseline, rules)` first checks that the run asked the same suite, then applies
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

import functools
import json
import os
import tempfile
import time
from pathlib import Path

from core.cache import digest
from core.values import determined
from reports.rows import by_variant, seed_values
from reports.stats import paired_delta, power, seed_differences, seed_matrix

BASELINE_FORMAT = "ragvft-baseline-1"
RULE_LEVEL = 0.025  # each rule's one-sided level: the lower half of a 95% interval


class GateError(Exception):
    """The gate could not be evaluated at all (unreadable or malformed run or baseline): exit code 2."""


MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)  # a file of the wrong shape


def _checked_shape(what: str):
    """Turn a malformed run or baseline (a missing key, a number where a table was) into a GateError
    naming it, rather than a traceback."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except MALFORMED as e:
                raise GateError(f"{what} is malformed: {type(e).__name__}: {e}") from None

        return inner

    return wrap


def read_run(run_dir: Path) -> tuple[list[dict], dict, dict]:
    """(rows, summary, manifest) of a run folder. The rows are those the run compared: with
    `leakage.exclude`, its leaked questions are left out here as they were in the run's own gate.
    Fails closed (GateError) when the run's `labels.json` covers another suite than the run."""
    rows, summary, manifest = read_run_files(run_dir)
    _check_labels_suite(Path(run_dir), rows, manifest)
    if ((manifest.get("config") or {}).get("leakage") or {}).get("exclude"):
        rows = [r for r in rows if not r.get("leaked")]
    return rows, summary, manifest


def read_run_files(run_dir: Path) -> tuple[list[dict], dict, dict]:
    """(every row, summary, manifest) of a run folder, as written: no question left out."""
    run_dir = Path(run_dir)
    try:
        rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line]
        summary = json.loads((run_dir / "summary.json").read_text())
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except FileNotFoundError as e:
        raise GateError(f"{run_dir}: not a ragvft run folder ({Path(e.filename).name} missing)") from None
    except json.JSONDecodeError as e:
        raise GateError(f"{run_dir}: unreadable run file: {e}") from None
    except OSError as e:
        raise GateError(f"{run_dir}: cannot read the run folder: {e.strerror or e}") from None
    return rows, summary, manifest


def suite_fingerprint(rows: list[dict], corpus_digest: str | None) -> str:
    """One hash of what the gate compares of a suite: every question's text, gold answers and gold
    passages (`question_content`) and the corpus. Labels from people carry it (`reports.labels`)."""
    return digest({"questions": question_content(rows), "corpus": corpus_digest})


def run_fingerprint(rows: list[dict], manifest: dict) -> str:
    """The suite fingerprint of a run: over all its rows (`read_run_files`), leaked ones included."""
    return suite_fingerprint(rows, (manifest.get("suite") or {}).get("corpus_digest"))


def _check_labels_suite(run_dir: Path, rows: list[dict], manifest: dict) -> None:
    """People's labels attached to a run are about its questions; labels of another suite mean the
    run folder was tampered with or mixed up, and nothing about it can be trusted to gate on."""
    path = run_dir / "labels.json"
    if not path.exists():
        return
    try:
        theirs = json.loads(path.read_text(encoding="utf-8"))["suite"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GateError(f"{path}: suite: unreadable labels file ({type(e).__name__}: {e})") from None
    mine = run_fingerprint(rows, manifest)
    if theirs != mine:
        raise GateError(
            f"{path}: suite: the labels cover another suite (fingerprint {theirs}; the run's is {mine})"
        )


def per_question(rows: list[dict]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{variant: {metric: {question_id: value}}}, seeds averaged (see `reports.rows`)."""
    return by_variant(rows)


def question_content(rows: list[dict]) -> dict[str, dict[str, str]]:
    """{question id: digests of its text, gold answers and gold passage ids}, from result rows."""
    out = {}
    for r in rows:
        out.setdefault(
            r["question_id"],
            {
                "question": digest(r["question"]),
                "gold answers": digest(sorted(r["gold_answers"])),
                "gold passages": digest(sorted(r.get("gold_passage_ids") or [])),
            },
        )
    return out


@_checked_shape("the run")
def bless(run_dir: Path, out: Path) -> dict:
    """Write the blessed baseline of `run_dir` to `out` (atomically) and return it. A run whose gated
    values are undetermined cannot be blessed: the gate could never compare against them."""
    rows, summary, manifest = read_run(run_dir)
    values = per_question(rows)
    rules = ((manifest.get("config") or {}).get("gate") or {}).get("rules") or []
    for rule in rules:
        v, m = rule["variant"], rule["metric"]
        bad = [q for q, x in (values.get(v, {}).get(m) or {}).items() if not determined(x)]
        if bad:
            raise GateError(
                f"{run_dir}: cannot bless: {v}.{m} has {len(bad)} undetermined values (e.g. {bad[0]}), "
                "and the gate checks it; fix the scorer or the rule first"
            )
    baseline = {
        "format": BASELINE_FORMAT,
        "run_id": manifest.get("run_id"),
        "blessed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": manifest.get("git"),
        "suite": manifest.get("suite"),
        "questions": question_content(rows),
        "variants": {  # a metric that does not apply to a variant (pairwise of the baseline) has none
            v: {
                m: {"mean": summary["variants"][v][m]["mean"], "per_question": values.get(v, {}).get(m, {})}
                for m in summary["metrics"]
            }
            for v in summary["variants"]
        },
    }
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(baseline, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a baseline is committed and shared
        os.replace(tmp, out)
    except OSError as e:
        raise GateError(f"{out}: cannot write the baseline: {e.strerror or e}") from None
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
    except (OSError, UnicodeDecodeError) as e:
        raise GateError(f"{path}: cannot read the baseline: {getattr(e, 'strerror', None) or e}") from None
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


def suite_differences(rows: list[dict], baseline: dict, corpus_digest: str | None) -> list[str]:
    """What differs between the suite this run asked and the blessed one, in words (empty: the same)."""
    blessed = baseline.get("questions")
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
    theirs = (baseline.get("suite") or {}).get("corpus_digest")
    if theirs is not None and corpus_digest is not None and theirs != corpus_digest:
        out.append(f"the corpus changed (digest {theirs} blessed, {corpus_digest} now)")
    return out


@_checked_shape("the run or the baseline")
def check(
    rows: list[dict],
    baseline: dict,
    rules: list[dict],
    *,
    samples: int = 2000,
    seed: int = 0,
    metric_info: dict | None = None,
    corpus_digest: str | None = None,
) -> dict:
    """Evaluate every rule; the gate passes only if every rule passes. `metric_info` (a summary's)
    gives each metric's kind and direction; `corpus_digest` is this run's, compared with the blessed."""
    info = metric_info or {}
    differences = suite_differences(rows, baseline, corpus_digest) if rows else []
    if differences:
        return {
            "status": "error",
            "blessed_run": baseline.get("run_id"),
            "rules": [
                {"rule": "same suite as the blessed run", "passed": False, "reason": "; ".join(differences)}
            ],
            "failed": 1,
            "suite_differences": differences,
        }
    current = per_question(rows)
    blessed = per_question_of(baseline)
    results = []
    for rule in rules:
        meta = info.get(rule["metric"]) or {}
        higher = meta.get("higher_is_better", True)
        noise = _seed_noise(rows, rule["variant"], rule["metric"])
        checked = _check_rule(
            rule, current, baseline, blessed, samples, seed, higher, meta.get("kind"), noise
        )
        results.append({"rule": rule_name(rule, higher), **rule, **checked})
    if not rules:
        results.append({"rule": "(no rules)", "passed": False, "reason": "the gate has no rules"})
    failed = [r for r in results if not r["passed"]]
    false_alarms = [
        r["power"]["false_alarm"] for r in results if (r.get("power") or {}).get("false_alarm") is not None
    ]
    no_alarm = 1.0
    for p in false_alarms:
        no_alarm *= 1 - p
    return {
        "status": "fail" if failed else "pass",
        "blessed_run": baseline.get("run_id"),
        "rules": results,
        "failed": len(failed),
        "family": {
            "rules": len(rules),
            "rule_level": RULE_LEVEL,
            "pass_error": RULE_LEVEL,  # intersection-union: passing needs every rule to pass
            "false_alarm_unchanged": 1 - no_alarm if false_alarms else None,
        },
    }


def per_question_of(baseline: dict) -> dict:
    return {
        v: {m: s.get("per_question") or {} for m, s in per.items()}
        for v, per in baseline.get("variants", {}).items()
    }


def _seed_noise(rows: list[dict], variant: str, metric: str):
    """The rerun noise measured between this run's training seeds for (variant, metric), if it has
    several seeds (see `reports.stats.seed_differences`)."""
    values = seed_values([r for r in rows if r["variant"] == variant], metric)
    if len({s for s, _ in values}) < 2:
        return None
    return seed_differences(seed_matrix(values)[0])


def _check_rule(
    rule: dict, current, baseline: dict, blessed, samples, seed, higher: bool, kind, noise=None
) -> dict:
    v, m = rule["variant"], rule["metric"]
    mine = current.get(v, {}).get(m)
    if mine is None:
        return {"passed": False, "reason": f"variant {v!r} or metric {m!r} is missing from this run"}
    if not mine:
        return {"passed": False, "reason": "the suite is empty: no questions were scored"}
    bad = [q for q, x in mine.items() if not determined(x)]
    if bad:
        return {"passed": False, "reason": f"{len(bad)} undetermined values in this run (e.g. {bad[0]})"}
    mean = sum(mine.values()) / len(mine)
    out: dict = {"mean": mean, "n": len(mine)}
    reasons = []
    if rule.get("floor") is not None and (mean < rule["floor"] if higher else mean > rule["floor"]):
        reasons.append(
            f"mean {mean:.3f} is {'below the floor' if higher else 'above the ceiling'} {rule['floor']:g}"
        )
    if rule.get("margin") is not None:
        theirs = blessed.get(v, {}).get(m)
        if theirs is None:
            return out | {"passed": False, "reason": f"{v}.{m} is missing from the blessed baseline"}
        bad = [q for q, x in theirs.items() if not determined(x)]
        if bad:
            return out | {
                "passed": False,
                "reason": f"{len(bad)} undetermined values in the blessed run (e.g. {bad[0]})",
            }
        if set(theirs) != set(mine):
            gone, new = len(set(theirs) - set(mine)), len(set(mine) - set(theirs))
            return out | {
                "passed": False,
                "reason": f"questions differ from the blessed run ({gone} missing, {new} new): re-bless",
            }
        # seed-averaged values are graded whatever the metric: decide by the data's shape, not by chance
        d = paired_delta(
            mine, theirs, kind="graded" if noise is not None else kind, samples=samples, seed=seed
        )
        out |= {
            "blessed_mean": baseline["variants"][v][m]["mean"],
            "delta": d["mean"],
            "delta_ci95": d["ci95"],
            "test": d["test"],
            "power": power(
                list(mine.values()), list(theirs.values()), margin=rule["margin"], seed_differences=noise
            ),
        }
        lo, hi = d["ci95"]
        if higher and lo < -rule["margin"]:
            reasons.append(
                f"dropped {d['mean']:+.3f} against the blessed run (95% interval "
                f"[{lo:+.3f}, {hi:+.3f}], lower bound below -{rule['margin']:g})"
            )
        if not higher and hi > rule["margin"]:
            reasons.append(
                f"rose {d['mean']:+.3f} against the blessed run, where lower is better (95% interval "
                f"[{lo:+.3f}, {hi:+.3f}], upper bound above {rule['margin']:g})"
            )
    return out | {"passed": not reasons, "reason": "; ".join(reasons) or "ok"}
