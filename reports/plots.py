"""Inline SVG plots for the report (no plotting library, no script, nothing fetched): a forest plot
of each metric with its interval, and quality against cost.

Every label is escaped: variant names come from the user's config.
"""

from __future__ import annotations

from html import escape

W, ROW, LEFT, RIGHT = 560, 22, 120, 20


def forest(summary: dict, metric: str) -> str:
    """Each variant's mean and 95% interval on a 0..1 axis, the baseline's mean as a dashed line."""
    variants = list(summary["variants"])
    h = 30 + ROW * len(variants)
    span = W - LEFT - RIGHT

    def x(v: float) -> float:
        return LEFT + span * min(1.0, max(0.0, v))

    parts = [f'<svg class="plot" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img">']
    parts.append(f"<title>{escape(metric)} by variant with 95% intervals</title>")
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="8" y2="{h - 18}"/>')
        parts.append(f'<text class="tick" x="{x(t):.1f}" y="{h - 4}" text-anchor="middle">{t:g}</text>')
    base = summary["variants"].get(summary["baseline_variant"], {}).get(metric, {}).get("mean")
    if base is not None:
        parts.append(f'<line class="base" x1="{x(base):.1f}" x2="{x(base):.1f}" y1="8" y2="{h - 18}"/>')
    for i, v in enumerate(variants):
        y = 20 + ROW * i
        s = summary["variants"][v][metric]
        parts.append(f'<text class="label" x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{escape(v)}</text>')
        if s["mean"] is None:
            continue
        lo, hi = s["ci95"] or (s["mean"], s["mean"])
        parts.append(f'<line class="ci" x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y}" y2="{y}"/>')
        parts.append(f'<circle class="mean" cx="{x(s["mean"]):.1f}" cy="{y}" r="4"/>')
    parts.append("</svg>")
    return "".join(parts)


def costs(rows: list[dict], manifest: dict) -> dict[str, dict[str, float]]:
    """Per variant: mean latency per answer (ms), mean prompt tokens, adapter training time (s)."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        a = acc.setdefault(r["variant"], {"latency": [], "tokens": []})
        a["latency"].append(1000 * (r.get("latency_s") or 0.0))
        a["tokens"].append(float(r.get("tokens_in") or 0))
    adapters = manifest.get("adapters") or {}
    out = {}
    for v, a in acc.items():
        record = (adapters.get(v) or {}).get("training") or {}
        out[v] = {
            "latency_ms": sum(a["latency"]) / len(a["latency"]),
            "prompt_tokens": sum(a["tokens"]) / len(a["tokens"]),
            "training_s": float(record.get("wall_time_s") or 0.0),
        }
    return out


def scatter(points: dict[str, tuple[float, float]], *, xlabel: str, ylabel: str, size: int = 260) -> str:
    """Labelled points (x: a cost, y: a 0..1 metric); up and to the left is better."""
    if not points:
        return ""
    pad = 34
    xmax = max(x for x, _ in points.values()) or 1.0
    span = size - 2 * pad

    def sx(v: float) -> float:
        return pad + span * v / (xmax * 1.05)

    def sy(v: float) -> float:
        return size - pad - span * min(1.0, max(0.0, v))

    parts = [f'<svg class="plot" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img">']
    parts.append(f"<title>{escape(ylabel)} against {escape(xlabel)}</title>")
    parts.append(f'<line class="axis" x1="{pad}" y1="{size - pad}" x2="{size - pad / 2}" y2="{size - pad}"/>')
    parts.append(f'<line class="axis" x1="{pad}" y1="{pad / 2}" x2="{pad}" y2="{size - pad}"/>')
    parts.append(
        f'<text class="tick" x="{size / 2}" y="{size - 8}" text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(f'<text class="tick" x="{pad + 4}" y="{pad / 2 + 4}">{escape(ylabel)} ↑</text>')
    for t in (0, 0.5, 1.0):
        parts.append(f'<text class="tick" x="{pad - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(
        f'<text class="tick" x="{sx(xmax):.1f}" y="{size - pad + 14}" text-anchor="middle">{xmax:.3g}</text>'
    )
    for name, (x, y) in points.items():
        parts.append(
            f'<circle class="mean" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4"><title>{escape(name)}</title></circle>'
        )
        parts.append(f'<text class="label" x="{sx(x) + 6:.1f}" y="{sy(y) - 5:.1f}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def cost_plots(rows: list[dict], summary: dict, manifest: dict) -> list[str]:
    metric = summary["metrics"][0]
    c = costs(rows, manifest)
    means = {v: s[metric]["mean"] for v, s in summary["variants"].items() if s[metric]["mean"] is not None}
    plots = []
    for key, label in (
        ("latency_ms", "ms per answer"),
        ("prompt_tokens", "prompt tokens"),
        ("training_s", "training s"),
    ):
        pts = {v: (c[v][key], means[v]) for v in means if v in c}
        if any(x for x, _ in pts.values()):
            plots.append(scatter(pts, xlabel=label, ylabel=metric))
    return plots
