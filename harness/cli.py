"""The `ragvft` command line. Exit codes: 0 success, 1 regression (gate), 2 bad input or configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from core.errors import InputError

app = typer.Typer(
    help="ragvft: should we fine-tune, retrieve, or both? Compare base, fine-tuned and retrieval-augmented "
    "variants of a model on one question set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_REGRESSION, EXIT_INPUT = 0, 1, 2


@app.callback()
def _root() -> None:
    """Compare base, fine-tuned and retrieval-augmented variants of a model on one question set."""


def _fail_input(err: InputError) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(EXIT_INPUT)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # per-file weight-loading bars; ragvft shows its own progress


@app.command()
def bench(
    config: Annotated[Path, typer.Option("--config", "-c", help="Bench configuration (YAML).")] = Path(
        "bench.yaml"
    ),
) -> None:
    """Run the whole pipeline: build what is missing, generate, score, and write runs/<run-id>/."""
    from harness.config import load_config

    try:
        cfg = load_config(config)
    except InputError as e:
        _fail_input(e)
    _quiet_libraries()
    from harness.run import bench as run_bench

    try:
        result = run_bench(cfg)
    except InputError as e:
        _fail_input(e)
    _print_summary(result.summary, result.run_dir, result.manifest)
    gate_result = result.summary.get("gate", {})
    if gate_result.get("status") in ("pass", "fail", "error"):
        raise typer.Exit(_print_gate(gate_result))


@app.command()
def retrieval(
    config: Annotated[Path, typer.Option("--config", "-c", help="Bench configuration (YAML).")] = Path(
        "bench.yaml"
    ),
    k: Annotated[str, typer.Option("--k", help="The k sweep, comma-separated.")] = "1,3,5,10,20",
) -> None:
    """Compare the config's retrievers without generating: Recall@k, MRR@10, nDCG@10, queries/s."""
    from harness.config import load_config

    try:
        ks = tuple(int(x) for x in k.split(",") if x.strip())
        if not ks or min(ks) < 1:
            raise ValueError
    except ValueError:
        _fail_input(InputError("--k", f"expected positive integers separated by commas, got {k!r}"))
    try:
        cfg = load_config(config)
        if not cfg.retrievers:
            raise InputError(str(config), "no retrievers to compare", field="retrievers")
        _quiet_libraries()
        from harness.run.retrieval import evaluate_retrievers

        run_dir, result = evaluate_retrievers(cfg, ks)
    except InputError as e:
        _fail_input(e)
    _print_retrieval(result, run_dir)


def _print_retrieval(result: dict, run_dir: Path) -> None:
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


@app.command()
def gate(
    run: Annotated[Path, typer.Option("--run", help="A run folder (runs/<run-id> or runs/latest).")],
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="The blessed baseline JSON [default: the config's gate.baseline]."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Take the rules from this config, not the run's.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write the result as JUnit XML.")] = None,
) -> None:
    """Check a run against the blessed baseline. Exit 0 pass, 1 regression, 2 error."""
    from harness.config import load_config
    from reports import gate as gating
    from reports.export import write_junit

    try:
        rows, summary, manifest = gating.read_run(run)
        gate_cfg = (manifest.get("config") or {}).get("gate") or {}
        if config is not None:
            cfg = load_config(config)
            gate_cfg = cfg.gate.model_dump() if cfg.gate else {}
        rules = gate_cfg.get("rules") or []
        if not rules:
            raise gating.GateError(f"{config or run}: no gate rules (add `gate.rules` to the config)")
        baseline = baseline or Path(gate_cfg.get("baseline") or "bench/baseline.json")
        blessed = gating.load_baseline(baseline)
        cfg_run = manifest.get("config") or {}
        result = gating.check(
            rows,
            blessed,
            rules,
            samples=cfg_run.get("bootstrap_samples", 2000),  # as the gate inside `ragvft bench` resamples
            seed=cfg_run.get("seed", 0),
            metric_info=summary.get("metric_info"),
            corpus_digest=(manifest.get("suite") or {}).get("corpus_digest"),
        )
    except InputError as e:
        _fail_input(e)
    except gating.GateError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(EXIT_INPUT) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a malformed run or baseline file
        typer.echo(f"error: {run} or {baseline} is malformed: {type(e).__name__}: {e}", err=True)
        raise typer.Exit(EXIT_INPUT) from None
    if junit is not None:
        write_junit(junit, summary | {"gate": result})
    raise typer.Exit(_print_gate(result))


@app.command()
def bless(
    run: Annotated[Path, typer.Option("--run", help="The run to bless (runs/<run-id> or runs/latest).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the baseline [default: the run's gate.baseline]."),
    ] = None,
) -> None:
    """Make a run the blessed baseline that `ragvft gate` and gated benches compare against."""
    from reports import gate as gating

    try:
        if out is None:
            _, _, manifest = gating.read_run(run)
            gate_cfg = (manifest.get("config") or {}).get("gate") or {}
            out = Path(gate_cfg.get("baseline") or "bench/baseline.json")
        blessed = gating.bless(run, out)
    except gating.GateError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(EXIT_INPUT) from None
    typer.echo(f"blessed run {blessed['run_id']} ({len(blessed['variants'])} variants) -> {out}")


export_app = typer.Typer(help="Export a suite for other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("lm-eval")
def export_lm_eval(
    out: Annotated[Path, typer.Option("--out", help="The task folder to write.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Bench configuration (YAML).")] = Path(
        "bench.yaml"
    ),
) -> None:
    """Write the config's suite as an lm-evaluation-harness task (closed-book prompts, exact match)."""
    import re

    from harness.artifacts import load_suite
    from harness.config import load_config
    from harness.lmeval import export_task, lmeval_command

    try:
        cfg = load_config(config)
        suite = load_suite(cfg)
    except InputError as e:
        _fail_input(e)
    name = "ragvft_" + re.sub(r"[^A-Za-z0-9_]+", "_", cfg.name)
    yaml_path = export_task(suite, out, name=name, max_new_tokens=cfg.generation.max_new_tokens)
    n = sum(1 for q in suite.questions if q.answers)
    typer.echo(f"wrote {yaml_path}, {yaml_path.with_suffix('.jsonl')} ({n} questions) and {out / 'utils.py'}")
    base = cfg.model.path or "<base folder>"  # the built-in model's folder exists only once it is built
    typer.echo("run it with:")
    typer.echo("  " + lmeval_command(yaml_path.parent, name, base=base, adapter="<adapter folder>"))


def _print_gate(result: dict) -> int:
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


def _print_summary(summary: dict, run_dir: Path, manifest: dict) -> None:
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

        console.print(
            f"judge: κ with exact match {f(g.get('kappa_with_em'))} on {g.get('decisive_n', 0)} decisive answers"
            f" · position consistency {f(p.get('position_consistency'))}"
            f" · undetermined {f(g.get('undetermined_rate'))} graded, {f(p.get('undetermined_rate'))} pairwise"
            f" · calls made {jr.get('calls_made')}, cached {jr.get('calls_cached')}",
            highlight=False,
        )
        if jr.get("warnings"):
            console.print(
                "[bold yellow]warning:[/] do not decide on the judge's scores: "
                + "; ".join(jr["warnings"])
                + " (see the report's judge section)",
                highlight=False,
            )
    c = manifest.get("cache", {})
    trained = ", ".join(c.get("adapters_trained", [])) or "none"
    cached = ", ".join(c.get("adapters_cached", [])) or "none"
    console.print(
        f"base model {c.get('base_model')} · adapters trained: {trained}; cached: {cached} · "
        f"generations computed {c.get('generations_computed')}, cached {c.get('generations_cached')}"
    )
    for variant, check in summary.get("adapter_checks", {}).items():
        if check.get("inert"):
            console.print(
                f"[bold yellow]warning:[/] {variant} answered exactly as {check['compared_with']} on every "
                "question: its adapter changed nothing (did it load?)"
            )
    console.print(f"report: {run_dir / 'report.html'}")


if __name__ == "__main__":
    app()
