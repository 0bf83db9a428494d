"""The decision, up front: for each knowledge slice (or the whole suite when there are none), which
variant wins on the run's first metric, by how much over the runner-up and over the baseline, with the
paired interval and whether the lead is significant, and what the winner costs (training time, tokens
per answer). Plain sentences, every figure in them taken from the numbers.

A variant "fine-tunes" when it has an adapter and "retrieves" when it has a retriever; the answer to
"fine-tune, retrieve or both?" is read from which kind wins each slice. Where the winner's lead over
the runner-up is not significant, it says so, and names every variant within noise of the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import Any

from judges import SCORERS
from reports.config import RunConfig, Variant
from reports.rows import per_question
from reports.stats import paired_delta

SLICE_WORDS = {
    "trained": "facts in the fine-tuning data",
    "corpus_only": "facts only in the documents",
}


def kind_of(variant: Variant) -> str:
    tuned = bool(variant.adapter or variant.adapter_path)
    retrieves = variant.retriever is not None
    return {(True, True): "both", (True, False): "fine-tune", (False, True): "retrieve"}.get(
        (tuned, retrieves), "neither"
    )


@dataclass(frozen=True)
class _Run:
    """What every verdict reads: the decision's metric, the variants in config order, each one's kind
    (fine-tune, retrieve...), training time and tokens per answer, and the config (baseline, bootstrap)."""

    metric: str
    variants: list[str]
    config: RunConfig
    kinds: dict[str, str]
    training_s: dict[str, float | None]
    tokens: dict[str, int | None]


def decide(
    rows: list[dict],
    config: RunConfig,
    *,
    training_s: dict[str, float | None],
    kinds: dict[str, str] | None = None,
) -> dict:
    """{"metric", "slices": [per slice], "overall": the whole suite, "answer": one sentence,
    "sentences": every sentence in reading order}. `training_s` is each variant's adapter training
    wall time in seconds, its start (DPO's SFT) included; None for a variant that trains nothing."""
    metric = config.decision_metric()  # `decision.metric`, else the first that pairs question by question
    if metric is None or not rows:
        return {}
    variants = [v.name for v in config.variants]
    kinds = kinds or {v.name: kind_of(v) for v in config.variants}
    tokens: dict[str, int | None] = {}
    for v in variants:
        used = [(r.get("tokens_in") or 0) + (r.get("tokens_out") or 0) for r in rows if r["variant"] == v]
        tokens[v] = round(mean(used)) if used else None
    run = _Run(metric, variants, config, kinds, training_s, tokens)
    slices = sorted({r["slice"] for r in rows if r.get("slice")})
    groups = [(s, [r for r in rows if r.get("slice") == s]) for s in slices]
    verdicts = [found for s, rs in groups if (found := _verdict(run, s, rs))]
    overall = _verdict(run, None, rows)
    answer = _answer(verdicts or [overall], overall, kinds) if overall else ""
    sentences = [v["sentence"] for v in verdicts] + ([overall["sentence"]] if verdicts and overall else [])
    if not verdicts and overall:
        sentences = [overall["sentence"]]
    return {
        "metric": metric,
        "slices": verdicts,
        "overall": overall,
        "answer": answer,
        "sentences": [answer, *sentences] if answer else sentences,
    }


def _verdict(run: _Run, slice_name: str | None, rows: list[dict]) -> dict | None:
    """The winner on `rows` (one slice, or the whole suite: `slice_name` None), its lead over the
    runner-up and the baseline, its cost, and the sentence that says it; None when no variant is scored."""
    metric, variants, config, tokens = run.metric, run.variants, run.config, run.tokens
    values = {v: per_question([r for r in rows if r["variant"] == v], metric) for v in variants}
    means = {v: m for v in variants if (m := _mean(values[v])) is not None}
    if not means:
        return None
    scorer = SCORERS.get(metric)  # its kind (as the summary's deltas read it) and direction
    kind, sign = getattr(scorer, "kind", None), (1 if getattr(scorer, "higher_is_better", True) else -1)

    def delta(a: str, b: str) -> dict | None:
        return paired_delta(
            values[a], values[b], kind=kind, seed=config.seed, samples=config.bootstrap_samples
        )

    ranked = sorted(means, key=lambda v: (-sign * means[v], variants.index(v)))
    winner = ranked[0]
    n = len(values[winner])
    where = (
        f"On {SLICE_WORDS.get(slice_name, f'the {slice_name!r} slice')} ({n} questions)"
        if slice_name
        else f"Over all {n} questions"
    )
    out: dict[str, Any] = {
        "slice": slice_name,
        "n": n,
        "winner": winner,
        "kind": run.kinds[winner],
        "mean": means[winner],
        "means": means,
        "cost": {"training_s": run.training_s.get(winner), "tokens_per_answer": tokens.get(winner)},
    }
    if len(ranked) == 1:
        out["sentence"] = f"{where}, {winner} is the only variant scored: {metric} {means[winner]:.2f}."
        return out
    runner = ranked[1]
    lead = delta(winner, runner)
    out |= {"runner_up": runner, "runner_up_mean": means[runner], "lead": lead}
    tied = [v for v in ranked[1:] if not (d := delta(winner, v)) or not d["significant"]]
    out["within_noise"] = tied
    base = config.baseline
    if base != winner and base in values:
        out["vs_baseline"] = delta(winner, base)
    out["sentence"] = _sentence(where, metric, out, means, base, tokens.get(base))
    return out


def _sentence(where: str, metric: str, v: dict, means: dict, base: str, base_tokens: int | None) -> str:
    winner, runner, lead = v["winner"], v["runner_up"], v["lead"]
    interval = _interval(lead)
    if lead and lead["significant"]:
        text = (
            f"{where}, {winner} wins on {metric}: {v['mean']:.2f} against {means[runner]:.2f} for {runner}, "
            f"{interval}, significant."
        )
    else:
        others = ", ".join(v["within_noise"])
        text = (
            f"{where}, no clear winner on {metric}: {winner} leads with {v['mean']:.2f}, but {others} "
            f"{'is' if len(v['within_noise']) == 1 else 'are'} within noise of it ({runner} {means[runner]:.2f}, "
            f"{interval})."
        )
    vb = v.get("vs_baseline")
    if vb is not None:
        text += f" Against {base} ({means[base]:.2f}): {_interval(vb)}."
    cost = v["cost"]
    trains = (
        f"trains for {_seconds(cost['training_s'])}" if cost["training_s"] is not None else "trains nothing"
    )
    against = f" ({base}: {base_tokens})" if winner != base and base_tokens is not None else ""
    text += f" {winner} {trains} and reads and writes {cost['tokens_per_answer']} tokens an answer{against}."
    return text


def _answer(verdicts: list[dict], overall: dict, kinds: dict) -> str:
    """Fine-tune, retrieve or both: from which kind of variant wins each slice. A slice's kind is clear
    when every variant within noise of its winner is of the winner's kind."""
    words = {
        "fine-tune": "fine-tune",
        "retrieve": "retrieve",
        "both": "fine-tune and retrieve",
        "neither": "neither",
    }
    per, decided = [], set()
    for v in verdicts:
        where = SLICE_WORDS.get(v["slice"], v["slice"]) if v["slice"] else "the suite"
        close = v.get("within_noise") or []
        other_kinds = sorted({kinds[c] for c in close} - {v["kind"]})
        if other_kinds:
            rivals = ", ".join(c for c in close if kinds[c] != v["kind"])
            per.append(
                f"{where}: {words[v['kind']]} ({v['winner']}) or {'/'.join(words[k] for k in other_kinds)} ({rivals}), within noise"
            )
            decided.add("unclear")
        else:
            also = f"; {', '.join(close)} within noise" if close else ""
            per.append(f"{where}: {words[v['kind']]} ({v['winner']}{also})")
            decided.add(v["kind"])
    if len(decided) == 1 and "unclear" not in decided:
        head = f"Decision: {words[next(iter(decided))]}"
    elif "unclear" in decided and len(decided) == 1:
        head = "Decision: not clear from this run"
    else:
        head = "Decision: it depends on the knowledge"
    best = (
        f"; over all questions {overall['winner']} leads ({overall['mean']:.2f})" if len(verdicts) > 1 else ""
    )
    return f"{head}: " + "; ".join(per) + best + "."


def _interval(d: dict | None) -> str:
    if not d:
        return "no paired questions"
    lo, hi = d["ci95"]
    return f"{d['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _mean(values: dict) -> float | None:
    xs = [x for x in values.values() if x is not None]
    return sum(xs) / len(xs) if xs else None
