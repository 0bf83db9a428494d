"""Why exact match and `match` differ: an instruct model answers in a sentence ("The Linar T14 comes
with a 35-month warranty."), which exact match calls wrong even where it holds the gold answer. For each
variant, the answers `match` counts right and exact match wrong, with the first few as examples."""

from __future__ import annotations

from judges.exact import contains_score

EXAMPLES = 2


def metric_gap(rows: list[dict], metrics: list[str]) -> dict:
    """{variant: {"n", "match_not_em", "em_not_match", "examples": [{question, answer, gold}]}}, or {}
    when the run scores only one of the two."""
    if "em" not in metrics or "match" not in metrics:
        return {}
    out: dict[str, dict] = {}
    for r in rows:
        em, match = (r["scores"].get(m) or {} for m in ("em", "match"))
        if em.get("value") is None or match.get("value") is None:
            continue
        v = out.setdefault(r["variant"], {"n": 0, "match_not_em": 0, "em_not_match": 0, "examples": []})
        v["n"] += 1
        if match["value"] >= 1 > em["value"]:
            v["match_not_em"] += 1
            if len(v["examples"]) < EXAMPLES:
                golds = r.get("gold_answers") or [""]
                gold = next((g for g in golds if contains_score(r["answer"], g)), golds[0])
                v["examples"].append({"question": r["question"], "answer": r["answer"], "gold": gold})
        elif em["value"] >= 1 > match["value"]:
            v["em_not_match"] += 1  # cannot happen with one normalisation; counted so a change shows
    return out


def gap_sentence(gap: dict, *, example: bool = True) -> str:
    """One plain sentence for the report (with an example answer) and report.md (without: it carries no
    model output); "" when match and exact match agree."""
    found = {v: g for v, g in gap.items() if g["match_not_em"]}
    if not found:
        return ""
    counts = ", ".join(f"{v} {g['match_not_em']} of {g['n']}" for v, g in found.items())
    ex = next(g["examples"][0] for g in found.values() if g["examples"])
    shown = f"; for example {ex['answer']!r} for gold {ex['gold']!r}" if example else ""
    return (
        f"match (the gold answer contained in the answer) counts answers right that exact match does not: "
        f"{counts}{shown}. The answers hold the gold answer inside a sentence: read match (or the judge) "
        f"for this model."
    )
