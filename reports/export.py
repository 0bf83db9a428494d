"""The run for other readers: `report.md` (a pull-request comment) and `junit.xml` (CI systems).

Neither carries model output: only variant names, numbers and the gate's reasons. Names come from
the user's config, so they are still escaped (Markdown table cells, XML attributes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from reports.metric_gap import gap_sentence


def _md(text: object) -> str:
    """Safe inside a Markdown table cell: no pipes, no raw HTML, no line breaks."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def render_markdown(summary: dict, manifest: dict) -> str:
    """`report.md`: the decision, the gate's verdict, every variant's means and deltas against the
    baseline, the length-controlled win rates, the gate's rules, agreement with people, and where the
    run's model, adapters and answers came from."""
    lines = _heading(summary, manifest)
    lines += _table(summary)
    lines += _length_controlled(summary)
    lines += _gate_rules(summary.get("gate") or {})
    lines += _agreement_lines(summary.get("human_agreement"))
    inert = [v for v, c in summary.get("adapter_checks", {}).items() if c.get("inert")]
    if inert:
        lines += ["", f"⚠️ adapters that changed no answer: {_md(', '.join(inert))}"]
    lines += _footer(manifest)
    return "\n".join(lines)


def _heading(summary: dict, manifest: dict) -> list[str]:
    """The run's name and id, the decision's sentences, the metric gap and the gate's verdict."""
    gate = summary.get("gate") or {}
    lines = [f"### ragvft · {_md(manifest.get('run_name', ''))} · `{_md(manifest.get('run_id', ''))}`", ""]
    decision = summary.get("decision") or {}
    if decision.get("sentences"):  # the answer first: fine-tune, retrieve or both
        lines += [" ".join(_md(s) for s in decision["sentences"]), ""]
    if gap := gap_sentence(summary.get("metric_gap") or {}, example=False):
        lines += [_md(gap), ""]
    if gate.get("status") in ("pass", "fail", "error"):
        icon = {"pass": "✅", "fail": "❌", "error": "⛔"}[gate["status"]]
        verdict = {"pass": "gate pass", "fail": "gate fail", "error": "gate error: not the blessed suite"}
        lines += [
            (
                f"{icon} **{verdict[gate['status']]}** against blessed run `{_md(gate.get('blessed_run'))}` "
                f"({len(gate['rules']) - gate['failed']}/{len(gate['rules'])} rules pass)"
            ),
            "",
        ]
    return lines


def _delta_cell(d: dict) -> str:
    """A delta against the baseline: mean, interval, p-values and the significance marks."""
    mark = (" **\\***" if d["significant"] else "") + (" ★" if d.get("significant_holm") else "")
    p = f" p={_p(d['p_value'])}" if d.get("p_value") is not None else ""
    p += f" (Holm {_p(d['p_holm'])})" if d.get("p_holm") is not None else ""
    return f"{d['mean']:+.3f} {_ci(d['ci95'])}{p}{mark}"


def _table(summary: dict) -> list[str]:
    """Each variant's mean and delta against the baseline on every metric, and what the marks mean."""
    metrics, base = summary["metrics"], summary["baseline_variant"]
    head = "| variant | " + " | ".join(f"{m} | Δ{m} vs {_md(base)}" for m in metrics) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(metrics)]
    for v, stats in summary["variants"].items():
        cells = []
        for m in metrics:
            s = stats[m]
            cells.append("–" if s["mean"] is None else f"{s['mean']:.3f} {_ci(s['ci95'])}")
            d = summary["deltas"].get(v, {}).get(m)
            cells.append(_delta_cell(d) if d else "baseline" if v == base else "–")
        lines.append(f"| {_md(v)} | " + " | ".join(cells) + " |")
    mc = summary.get("multiple_comparisons") or {}
    return lines + [
        "",
        "\\* significant at 5% on its own: McNemar's test with Tango's score interval for 0/1 metrics, the paired "
        "bootstrap interval and p-value for graded ones."
        + (
            f" ★ still significant after Holm's adjustment over the {mc['size']} comparisons against "
            f"{_md(base)} ({mc['significant_holm']} of {mc['significant_raw']})."
            if mc.get("size")
            else ""
        ),
    ]


def _gate_rules(gate: dict) -> list[str]:
    """One table row per gate rule: passed or failed, and why."""
    if not gate.get("rules"):
        return []
    lines = ["", "| gate rule | result | reason |", "|---|---|---|"]
    for r in gate["rules"]:
        lines.append(f"| {_md(r['rule'])} | {'pass' if r['passed'] else '**FAIL**'} | {_md(r['reason'])} |")
    return lines


def _footer(manifest: dict) -> list[str]:
    """Where the run's base model, adapters and answers came from, and the commit it ran at."""
    cache = manifest.get("cache", {})
    git = manifest.get("git") or {}
    return [
        "",
        (
            f"<sub>base model {_md(cache.get('base_model'))} · adapters trained: "
            f"{_md(', '.join(cache.get('adapters_trained', [])) or 'none')} · generations computed "
            f"{cache.get('generations_computed')}, cached {cache.get('generations_cached')} · git "
            f"{_md(git.get('commit') or 'none')[:10]}</sub>"
        ),
        "",
    ]


def _length_controlled(summary: dict) -> list[str]:
    """The pairwise win rates against the baseline beside their length-controlled ones, if any."""
    lcs = summary.get("length_controlled") or {}
    if not lcs:
        return []
    base = _md(summary["baseline_variant"])
    lines = [
        "",
        f"| pairwise vs {base} | win rate | LC win rate [95% CI] | length coef |",
        "|---|---:|---:|---:|",
    ]
    for v, lc in lcs.items():
        lines.append(
            f"| {_md(v)} | {lc['win_rate']:.3f} | {lc['lc_win_rate']:.3f} {_ci(lc['lc_ci95'])} "
            f"| {lc['length_coef']:+.2f} |"
        )
    return lines + [
        "",
        "LC: length-controlled (AlpacaEval), the win rate a logistic fit predicts at equal length.",
    ]


def _agreement_lines(ha: dict | None) -> list[str]:
    """One line on how far the judge and exact match agree with people's labels, when there are any."""
    if not ha:
        return []

    def figure(name: str, f: dict | None) -> str:
        f = (f or {}).get("overall") or {}
        if not f.get("n"):
            return f"{name}: no labelled answers it decided"
        kappa = "–" if f["kappa"] is None else f"{f['kappa']:.2f}"
        return f"{name} accuracy {f['accuracy']:.2f}, κ {kappa} {_ci(f.get('kappa_ci95'))}".rstrip()

    parts = [figure("judge", ha["judge"])] if ha.get("judge") else []
    parts.append(figure("exact match", ha.get("em")))
    if ha.get("judge"):
        parts.append(f"judge and people disagree on {len(ha.get('disagreements') or [])}")
    head = f"**Agreement with people** ({ha['compared_answers']} labelled answers): "
    return ["", head + "; ".join(parts)]


def write_junit(path: Path, summary: dict) -> None:
    """One test case per gate rule; without a gate, one per (variant, metric) that checks the metric
    was scored at all (no undetermined values), with its mean and interval as properties."""
    gate = summary.get("gate") or {}
    suite = ET.Element("testsuite", name="ragvft")
    cases = 0
    failures = 0
    if gate.get("rules"):
        for r in gate["rules"]:
            case = ET.SubElement(suite, "testcase", classname="ragvft.gate", name=r["rule"])
            cases += 1
            if not r["passed"]:
                failures += 1
                ET.SubElement(case, "failure", message=r["reason"]).text = r["reason"]
    else:
        for v, stats in summary["variants"].items():
            for m, s in stats.items():
                case = ET.SubElement(suite, "testcase", classname=f"ragvft.{v}", name=m)
                cases += 1
                props = ET.SubElement(case, "properties")
                for k in ("mean", "n", "undetermined"):
                    ET.SubElement(props, "property", name=k, value=str(s[k]))
                if s["undetermined"] or s["mean"] is None:
                    failures += 1
                    msg = f"{s['undetermined']} undetermined values"
                    ET.SubElement(case, "failure", message=msg).text = msg
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
