"""The HTML report: one self-contained file (styles and script inline, no network), rendered with
Jinja2 autoescaping: model answers and passages are untrusted text and always show as text."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


_env.filters["fmt"] = _fmt


def _bar(stat: dict | None) -> dict | None:
    """Geometry (in %) of a mean with its interval, for metrics on a 0..1 scale."""
    if not stat or stat.get("mean") is None:
        return None
    lo, hi = stat["ci95"] or (stat["mean"], stat["mean"])
    return {"mean": 100 * stat["mean"], "lo": 100 * lo, "hi": 100 * hi}


_env.filters["bar"] = _bar


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
                "flips": {},  # variant -> "up" (right where the baseline is wrong) or "down"
            },
        )
        q["by_variant"][r["variant"]] = r
    baseline = summary["baseline_variant"]
    for q in questions.values():
        base_row = q["by_variant"].get(baseline)
        base_em = base_row["scores"].get("em", {}).get("value") if base_row else None
        for v, r in q["by_variant"].items():
            em = r["scores"].get("em", {}).get("value")
            if base_em == 0 and em == 1:
                q["flips"][v] = "up"
            elif base_em == 1 and em == 0:
                q["flips"][v] = "down"
    return _env.get_template("report.html.j2").render(
        summary=summary,
        manifest=manifest,
        variants=variants,
        metrics=summary["metrics"],
        questions=list(questions.values()),
        manifest_json=json.dumps(manifest, indent=2, default=str),
    )


def write_html(path: Path, **kwargs) -> None:
    path.write_text(render(**kwargs), encoding="utf-8")
