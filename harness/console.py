"""What the `ragvft` commands print: the run's table and notes, the gate's verdict, the retrieval
comparison and the calibration (rich tables on stdout)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

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


def fail_input(err: Exception) -> None:
    """A bad input's one line on stderr, then exit 2."""
    import typer

    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(EXIT_INPUT)


def print_retrieval(result: dict, run_dir: Path) -> None:
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

        def f(x):
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


def print_gate(result: dict) -> int:
    """Print the gate's verdict and every failing rule plainly; return the exit code."""
    from rich.console import Console

    console = Console()
    for r in result["rules"]:
        if not r["passed"]:
            console.print(f"[bold red]FAIL[/] {r['rule']}: {r['reason']}", highlight=False, soft_wrap=True)
    n = len(result["rules"])
    if result["status"] == "error":
        console.print(
            f"[bold red]gate error[/]: this run cannot be compared with blessed run {result['blessed_run']}"
        )
        return EXIT_INPUT
    if result["status"] == "pass":
        console.print(
            f"[bold green]gate passed[/]: {n}/{n} rules against blessed run {result['blessed_run']}"
        )
        return EXIT_OK
    console.print(
        f"[bold red]gate failed[/]: {result['failed']} of {n} rules against blessed run {result['blessed_run']}"
    )
    return EXIT_REGRESSION


def print_summary(summary: dict, run_dir: Path, manifest: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from judges import judged as judged_metrics

    info = summary.get("metric_info") or {}
    judged = judged_metrics(info, summary["metrics"])
    exact = [m for m in summary["metrics"] if m not in judged]
    shown = exact + [m for m in judged if info[m]["leaderboard"]]  # the rest: in the report
    table = Table(title=f"ragvft · {summary['suite']}")
    table.add_column("variant")
    for m in shown:
        table.add_column(m, justify="right")
        if m in exact:
            table.add_column(f"Δ{m}", justify="right")
    for v, stats in summary["variants"].items():
        cells = []
        for m in shown:
            mean = stats[m]["mean"]
            cells.append("–" if mean is None else f"{mean:.3f}")
            if m in exact:
                d = summary["deltas"].get(v, {}).get(m)
                cells.append("" if not d else f"{d['mean']:+.3f}")
        table.add_row(v, *cells)
    console = Console()
    console.print(table)
    jr = summary.get("judge_reliability") or {}
    if jr.get("grade") or jr.get("pairwise"):
        g, p = jr.get("grade") or {}, jr.get("pairwise") or {}

        def f(x):
            return "–" if x is None else f"{x:.2f}"

        with_match = (
            f", with match {f(g['kappa_with_match'])} on {g['match_decisive_n']}"
            if "kappa_with_match" in g
            else ""
        )
        console.print(
            f"judge: κ with exact match {f(g.get('kappa_with_em'))} on {g.get('decisive_n', 0)} decisive answers"
            f"{with_match}"
            f" · position consistency {f(p.get('position_consistency'))}"
            f" · undetermined {f(g.get('undetermined_rate'))} graded, {f(p.get('undetermined_rate'))} pairwise"
            f" · calls made {jr.get('calls_made')}, cached {jr.get('calls_cached')}"
            + (
                f" · planted restatements accepted {f(jr['planted'].get('accepted'))}"
                if jr.get("planted")
                else ""
            ),
            highlight=False,
        )
        if jr.get("warnings"):
            console.print(
                "[bold yellow]warning:[/] do not decide on the judge's scores: "
                + "; ".join(jr["warnings"])
                + " (see the report's judge section)",
                highlight=False,
            )
    if line := ragas_line(summary):
        console.print(line, highlight=False)
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
    for variant, check in summary.get("adapter_checks", {}).items():
        if check.get("inert"):
            console.print(
                f"[bold yellow]warning:[/] {variant} answered exactly as {check['compared_with']} on every "
                "question: its adapter changed nothing (did it load?)"
            )
    console.print(f"report: {run_dir / 'report.html'}")


def ragas_line(summary: dict) -> str | None:
    """The ragas metrics in one line (they score retrieval variants only, so the leaderboard leaves
    them to the report): each metric's range over the variants it scored, and how many of its rows
    were undetermined."""
    info = summary.get("metric_info") or {}
    parts = []
    for m in summary["metrics"]:
        scored = [v[m] for v in summary["variants"].values() if m in v and v[m]["n"] + v[m]["undetermined"]]
        if (info.get(m) or {}).get("source") != "ragas" or not scored:
            continue
        means = [s["mean"] for s in scored if s["mean"] is not None]
        undetermined = sum(s["undetermined"] for s in scored)
        rows = sum(s["n"] for s in scored) + undetermined
        low, high = (min(means), max(means)) if means else (None, None)
        shown = "–" if low is None else f"{low:.2f}" + (f"–{high:.2f}" if high > low else "")
        parts.append(f"{m} {shown} ({len(scored)} variants, {undetermined} of {rows} undetermined)")
    return "ragas: " + " · ".join(parts) + " (per variant in the report)" if parts else None


def print_decision(summary: dict) -> None:
    """The decision, last on the console: fine-tune, retrieve or both, slice by slice."""
    from rich.console import Console

    decision = summary.get("decision") or {}
    if not decision.get("sentences"):
        return
    console = Console()
    answer, *rest = decision["sentences"]
    console.print(f"[bold]{escape(answer)}[/]", highlight=False)
    for sentence in rest:
        console.print("  " + escape(sentence), highlight=False)


def print_calibration(proposals: list[dict], chosen: list[int], run_dir: Path) -> None:
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
