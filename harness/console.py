"""What the `ragvft` commands print: the run's table and notes, the gate's verdict, the retrieval
comparison and the calibration (rich tables on stdout)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.markup import escape

from reports.records import GateResult, Summary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

EXIT_OK, EXIT_REGRESSION, EXIT_INPUT = 0, 1, 2


def quiet_libraries() -> None:
    """Keep the libraries' own bars and warnings off the console, where ragvft shows its own."""
    import os

    # tqdm reads TQDM_DISABLE when it is first imported: set before anything imports it, it keeps
    # lm-eval's and datasets' bars off the console, where ragvft shows its own (rich) progress
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # per-file weight-loading bars; ragvft shows its own progress


def fail_input(err: Exception) -> NoReturn:
    """A bad input's one line on stderr, then exit 2: a line break (or half a UTF-16 pair) a file put
    in a message that is no `InputError` (which makes itself one line) escaped."""
    import typer

    text = str(err).replace("\r", "\\r").replace("\n", "\\n")
    typer.echo("error: " + text.encode("utf-8", "backslashreplace").decode("utf-8"), err=True)
    raise typer.Exit(EXIT_INPUT)


def print_retrieval(result: dict[str, Any], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    ks = result["ks"]
    table = Table(
        title=f"ragvft retrieval · {result['suite']} · {result['questions']} questions, {result['passages']} passages"
    )
    table.add_column("retriever")
    for k in ks:
        table.add_column(f"R@{k}", justify="right")
    for col in ("hit@10", "MRR@10", "nDCG@10", "q/s"):
        table.add_column(col, justify="right")
    for name, r in result["retrievers"].items():
        m = r["metrics"]

        def f(x: float | None) -> str:
            return "–" if x is None else f"{x:.3f}"

        table.add_row(
            name,
            *[f(m[f"recall@{k}"]) for k in ks],
            f(m["hit@10"]),
            f(m["mrr@10"]),
            f(m["ndcg@10"]),
            str(r["queries_per_s"]),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log file: no terminal width to fit, keep columns whole
    console.print(table)
    console.print(f"written: {run_dir / 'retrieval.json'}")


def print_gate(result: GateResult) -> int:
    """Print the gate's verdict and every failing rule plainly; return the exit code."""
    from rich.console import Console

    console = Console()
    for r in result.rules:
        if not r["passed"]:
            console.print(f"[bold red]FAIL[/] {r['rule']}: {r['reason']}", highlight=False, soft_wrap=True)
    n = len(result.rules)
    if result.status == "error":
        console.print(
            f"[bold red]gate error[/]: this run cannot be compared with blessed run {result.blessed_run}"
        )
        return EXIT_INPUT
    if result.status == "pass":
        console.print(f"[bold green]gate passed[/]: {n}/{n} rules against blessed run {result.blessed_run}")
        return EXIT_OK
    console.print(
        f"[bold red]gate failed[/]: {result.failed} of {n} rules against blessed run {result.blessed_run}"
    )
    return EXIT_REGRESSION


def print_summary(summary: Summary, run_dir: Path, manifest: dict[str, Any]) -> None:
    """The run's leaderboard, then a line each on the judge, ragas and the caches, with warnings."""
    from rich.console import Console

    console = Console()
    console.print(_leaderboard(summary))
    _print_judge(console, summary.judge_reliability)
    if ragas := ragas_line(summary):
        console.print(ragas, highlight=False)
    _print_run(console, summary, manifest)
    console.print(f"report: {run_dir / 'report.html'}")


def _leaderboard(summary: Summary) -> Table:
    """Each variant's mean on the exact metrics (with its delta against the baseline variant) and on
    the judge's leaderboard metrics; the rest are in the report."""
    from rich.table import Table

    from judges import judged as judged_metrics

    info = summary.metric_info
    judged = judged_metrics(info, summary.metrics)
    exact = [m for m in summary.metrics if m not in judged]
    shown = exact + [m for m in judged if info[m]["leaderboard"]]  # the rest: in the report
    table = Table(title=f"ragvft · {summary.suite}")
    table.add_column("variant")
    for m in shown:
        table.add_column(m, justify="right")
        if m in exact:
            table.add_column(f"Δ{m}", justify="right")
    for v, stats in summary.variants.items():
        cells = []
        for m in shown:
            mean = stats[m]["mean"]
            cells.append("–" if mean is None else f"{mean:.3f}")
            if m in exact:
                d = summary.deltas.get(v, {}).get(m)
                cells.append("" if not d else f"{d['mean']:+.3f}")
        table.add_row(v, *cells)
    return table


def _two(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _print_judge(console: Console, jr: dict[str, Any]) -> None:
    """The judge's reliability in one line, and a warning when its scores should not be decided on."""
    if not (jr.get("grade") or jr.get("pairwise")):
        return
    g, p = jr.get("grade") or {}, jr.get("pairwise") or {}
    with_match = (
        f", with match {_two(g['kappa_with_match'])} on {g['match_decisive_n']}" if "kappa_with_match" in g else ""
    )
    planted = f" · planted restatements accepted {_two(jr['planted'].get('accepted'))}" if jr.get("planted") else ""
    console.print(
        f"judge: κ with exact match {_two(g.get('kappa_with_em'))} on {g.get('decisive_n', 0)} decisive answers"
        f"{with_match}"
        f" · position consistency {_two(p.get('position_consistency'))}"
        f" · undetermined {_two(g.get('undetermined_rate'))} graded, {_two(p.get('undetermined_rate'))} pairwise"
        f" · calls made {jr.get('calls_made')}, cached {jr.get('calls_cached')}" + planted,
        highlight=False,
    )
    if jr.get("warnings"):
        console.print(
            "[bold yellow]warning:[/] do not decide on the judge's scores: "
            + "; ".join(jr["warnings"])
            + " (see the report's judge section)",
            highlight=False,
        )


def _print_run(console: Console, summary: Summary, manifest: dict[str, Any]) -> None:
    """What the run built and took from the caches, and warnings: prompts cut to fit the model's
    context, adapters that changed no answer."""
    c = manifest.get("cache", {})
    trained = ", ".join(c.get("adapters_trained", [])) or "none"
    cached = ", ".join(c.get("adapters_cached", [])) or "none"
    if c.get("adapters_shipped"):  # copied from the project's shipped files: trained by maintainers
        cached += f"; shipped: {', '.join(c['adapters_shipped'])}"
    console.print(
        f"base model {c.get('base_model')} · adapters trained: {trained}; cached: {cached} · "
        f"generations computed {c.get('generations_computed')}, cached {c.get('generations_cached')}"
    )
    engine = (manifest.get("engine") or {}).get("details") or {}
    if engine.get("truncated_prompts"):
        console.print(
            f"[bold yellow]warning:[/] {engine['truncated_prompts']} prompts did not fit the model's context "
            f"({engine.get('context')} tokens less max_new_tokens): their beginning was cut",
            highlight=False,
        )
    for variant, check in summary.adapter_checks.items():
        if check and check.get("inert"):
            console.print(
                f"[bold yellow]warning:[/] {variant} answered exactly as {check['compared_with']} on every "
                "question: its adapter changed nothing (did it load?)"
            )


def ragas_line(summary: Summary | dict[str, Any]) -> str | None:
    """The ragas metrics in one line (they score retrieval variants only, so the leaderboard leaves
    them to the report): each metric's range over the variants it scored, and how many of its rows
    were undetermined. `summary`: a Summary, or its JSON form."""
    if isinstance(summary, dict):
        summary = Summary.model_validate(summary)
    info = summary.metric_info
    parts = []
    for m in summary.metrics:
        scored = [v[m] for v in summary.variants.values() if m in v and v[m]["n"] + v[m]["undetermined"]]
        if (info.get(m) or {}).get("source") != "ragas" or not scored:
            continue
        means = [s["mean"] for s in scored if s["mean"] is not None]
        undetermined = sum(s["undetermined"] for s in scored)
        rows = sum(s["n"] for s in scored) + undetermined
        low, high = (min(means), max(means)) if means else (None, None)
        shown = "–" if low is None else f"{low:.2f}" + (f"–{high:.2f}" if high > low else "")
        parts.append(f"{m} {shown} ({len(scored)} variants, {undetermined} of {rows} undetermined)")
    return "ragas: " + " · ".join(parts) + " (per variant in the report)" if parts else None


def print_decision(summary: Summary) -> None:
    """The decision, last on the console: fine-tune, retrieve or both, slice by slice."""
    from rich.console import Console

    decision = summary.decision
    if not decision.get("sentences"):
        return
    console = Console()
    answer, *rest = decision["sentences"]
    console.print(f"[bold]{escape(answer)}[/]", highlight=False)
    for sentence in rest:
        console.print("  " + escape(sentence), highlight=False)


def print_calibration(proposals: list[dict[str, Any]], chosen: list[int], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ragvft calibrate · seeds {chosen}")
    for col in ("rule", "seed means", "seed SD", "worst pair's lower bound", "margin now", "proposed"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for p in proposals:
        means = (
            " ".join("–" if x is None else f"{x:.3f}" for x in (p.get("seed_means") or {}).values()) or "–"
        )
        table.add_row(
            f"{p['variant']}.{p['metric']}",
            means,
            f"{p['seed_sd']:.3f}" if "seed_sd" in p else "–",
            f"{p['worst_lower_bound']:+.3f}" if "worst_lower_bound" in p else p.get("note", "–"),
            "–" if p["current_margin"] is None else f"{p['current_margin']:g}",
            "–" if p["proposed_margin"] is None else f"{p['proposed_margin']:g}",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
    console.print(
        f"written: {run_dir / 'margins.yaml'} and {run_dir / 'calibration.json'}; report: {run_dir / 'report.html'}"
    )
