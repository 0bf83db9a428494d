"""The HTML report: one self-contained file (styles and script inline, no network), rendered with
Jinja2 autoescaping: model answers and passages are untrusted text and always show as text."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from judges import judged as judged_metrics
from reports import plots
from reports.metric_gap import gap_sentence

_env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


_env.filters["fmt"] = _fmt


def _pfmt(p: float | None) -> str:
    """A p-value as people read it: three significant digits, or "<0.001"."""
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


_env.filters["pfmt"] = _pfmt

FORGETTING_NOTABLE = 0.05  # a change on an outside task worth colouring (EM or accuracy: 5 of 100)


def _change_class(delta: float | None, notable: float) -> str:
    """ "neg" for a drop beyond `notable`, "pos" for a rise beyond it, else nothing."""
    if delta is None:
        return ""
    return "neg" if delta < -notable else ("pos" if delta > notable else "")


_env.filters["change_class"] = _change_class


def _bar(stat: dict | None) -> dict | None:
    """Geometry (in %) of a mean with its interval, for metrics on a 0..1 scale."""
    if not stat or stat.get("mean") is None:
        return None
    lo, hi = stat["ci95"] or (stat["mean"], stat["mean"])
    return {"mean": 100 * stat["mean"], "lo": 100 * lo, "hi": 100 * hi}


_env.filters["bar"] = _bar


def _sparkline(points: list[float], width: int = 160, height: int = 36) -> str:
    """SVG polyline points for a curve (e.g. a loss curve), scaled into width x height."""
    if len(points) < 2:
        return ""
    lo, hi = min(points), max(points)
    span = (hi - lo) or 1.0
    step = width / (len(points) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (p - lo) / span * (height - 4):.1f}" for i, p in enumerate(points)
    )


def matrix(manifest: dict, summary: dict) -> dict | None:
    """Variants laid out as fine-tuning (rows: base, sft, dpo, cpt, adapter folders) against retrieval
    (columns: closed-book, then each retriever and k). None when there is only one row or column."""
    config = manifest.get("config") or {}
    variants = config.get("variants") or []
    if not variants:
        return None
    cells: dict[tuple[str, str], str] = {}
    rows: list[str] = []
    cols: list[str] = []
    for v in variants:
        row = v.get("adapter") or (f"adapter {v['name']}" if v.get("adapter_path") else "base")
        col = f"{v['retriever']} k={v['k']}" if v.get("retriever") else "closed-book"
        if v["name"] not in summary["variants"]:
            continue
        rows += [row] if row not in rows else []
        cols += [col] if col not in cols else []
        cells.setdefault((row, col), v["name"])
    if len(rows) < 2 and len(cols) < 2:
        return None
    return {"rows": rows, "cols": cols, "cells": {f"{r}|{c}": n for (r, c), n in cells.items()}}


def adapters(manifest: dict, summary: dict) -> list[dict]:
    """One entry per adapter variant: how it was made, its loss curve, and the sanity check."""
    out = []
    checks = summary.get("adapter_checks", {})
    adapters_ = manifest.get("adapters") or {}
    records = [a.get("training") or {} for a in adapters_.values()]
    methods = {r.get("key"): r.get("method") for r in records}  # training key -> method
    for variant, a in adapters_.items():
        record = dict(a.get("training") or {})
        if record.get("init") and not record.get("init_method"):  # a record from before it was written
            record["init_method"] = methods.get(record["init"])
        losses = [p["loss"] for p in record.get("loss_curve", [])]
        out.append(
            {
                "variant": variant,
                "source": a["source"],
                "record": record,
                "config": a.get("config", {}),
                "loss_points": _sparkline(losses),
                "loss_range": (losses[0], losses[-1]) if losses else None,
                "check": checks.get(variant) or {},
                "signal": signal(record),
            }
        )
    return out


# Each method's own figures in its training record (the last logged value), as the adapters table
# shows them: preference methods' reward accuracy and margin, ORPO's log odds, KTO's rewards, RL's
# mean reward and KL, RLHF's reward model's accuracy on pairs it never saw.
SIGNALS = (
    ("reward_accuracy", "reward acc"),
    ("reward_margin", "margin"),
    ("log_odds_chosen", "log odds"),
    ("reward_chosen", "reward +"),
    ("reward_rejected", "reward −"),
    ("mean_reward", "mean reward"),
    ("kl", "KL"),
)


def signal(record: dict) -> list[tuple[str, str]]:
    """(label, value) of each figure of `SIGNALS` the record has; RL's mean reward as first → last;
    RLHF's reward model's held-out pairwise accuracy."""
    out = []
    for key, label in SIGNALS:
        value = record.get(key)
        if value is None:
            continue
        text = f"{value:.2f}"
        if key == "mean_reward" and record.get("mean_reward_first") is not None:
            text = f"{record['mean_reward_first']:.2f} → {value:.2f}"
        out.append((label, text))
    reward_model = record.get("reward") or {}
    if reward_model.get("heldout_accuracy") is not None:
        out.append(("reward model held-out acc", f"{reward_model['heldout_accuracy']:.2f}"))
    return out


def render(*, rows: list[dict], summary: dict, manifest: dict) -> str:
    variants = list(summary["variants"])
    questions: dict[str, dict] = {}
    for r in rows:
        q = questions.setdefault(
            r["question_id"],
            {
                "id": r["question_id"],
                "text": r["question"],
                "gold": r["gold_answers"],
                "category": r["category"],
                "slice": r["slice"],
                "by_variant": {},
                "leaked": bool(r.get("leaked")),
                "flips": {},  # variant -> "up" (right where the baseline is wrong) or "down"
            },
        )
        q["by_variant"].setdefault(r["variant"], r)  # with several training seeds: the first seed's
    baseline = summary["baseline_variant"]
    info = summary.get("metric_info") or {}
    flip = flip_metric(summary["metrics"], info)

    def right(r: dict) -> float | None:
        return r["scores"].get(flip, {}).get("value") if flip else None

    for q in questions.values():
        base_row = q["by_variant"].get(baseline)
        base_value = right(base_row) if base_row else None
        for v, r in q["by_variant"].items():
            value = right(r)
            if base_value == 0 and value == 1:
                q["flips"][v] = "up"
            elif base_value == 1 and value == 0:
                q["flips"][v] = "down"
        q["right"] = sum(1 for r in q["by_variant"].values() if right(r) == 1)
    judged = judged_metrics(info, summary["metrics"])
    return _env.get_template("report.html.j2").render(
        summary=summary,
        metric_gap=gap_sentence(summary.get("metric_gap") or {}),
        manifest=manifest,
        variants=variants,
        metrics=summary["metrics"],
        lead=lead_metrics(summary["metrics"], info),
        flip_metric=flip,
        forgetting_notable=FORGETTING_NOTABLE,
        judged=judged,
        questions=list(questions.values()),
        matrix=matrix(manifest, summary),
        forests={m: Markup(plots.forest(summary, m)) for m in summary["metrics"]},
        cost_plots=[Markup(svg) for svg in plots.cost_plots(rows, summary, manifest)],
        adapters=adapters(manifest, summary),
        pairwise_counts=pairwise_counts(rows, variants),
        manifest_json=json.dumps(manifest, indent=2, default=str),
    )


def flip_metric(metrics: list[str], info: dict) -> str | None:
    """The metric whose flips (right where the baseline is wrong, or the reverse) the question table
    marks: the first 0/1 metric of the run."""
    return next((m for m in metrics if (info.get(m) or {"kind": "binary"})["kind"] == "binary"), None)


def lead_metrics(metrics: list[str], info: dict) -> list[str]:
    """The leaderboard's metrics, as the scorer registry marks them (`leaderboard`): the exact ones, the
    judge's verdict and its pairwise win rate; the rubric score and the ragas metrics go in the judge's
    section (a leaderboard must fit a screen)."""
    return [m for m in metrics if (info.get(m) or {}).get("leaderboard", True)]


def pairwise_counts(rows: list[dict], variants: list[str]) -> dict[str, dict[str, int]]:
    """{variant: {win, tie, loss, undetermined}} against the baseline, for variants judged pairwise."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        s = r["scores"].get("pairwise")
        if s is None:
            continue
        c = out.setdefault(r["variant"], {"win": 0, "tie": 0, "loss": 0, "undetermined": 0})
        c[s.get("label") or "undetermined"] += 1
    return {v: out[v] for v in variants if v in out}


def write_html(path: Path, *, rows: list[dict], summary: dict, manifest: dict) -> None:
    path.write_text(render(rows=rows, summary=summary, manifest=manifest), encoding="utf-8")
