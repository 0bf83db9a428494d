"""The `ragvft` command line. Exit codes: 0 success, 1 regression (gate), 2 bad input or configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import InputError
from harness.console import (
    fail_input,
    print_calibration,
    print_decision,
    print_gate,
    print_retrieval,
    print_summary,
)
from harness.console import quiet_libraries as _quiet_libraries
from harness.synth.cli import synth  # its body lives with the command's other modules
from reports.records import GateResult, Summary

if TYPE_CHECKING:
    from harness.config import BenchConfig

app = typer.Typer(
    help="ragvft: should we fine-tune, retrieve, or both? Compare base, fine-tuned and retrieval-augmented "
    "variants of a model on one question set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Compare base, fine-tuned and retrieval-augmented variants of a model on one question set."""


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
        fail_input(e)
    _quiet_libraries()
    from harness.run import bench as run_bench

    try:
        result = run_bench(cfg)
    except InputError as e:
        fail_input(e)
    summary = Summary.model_validate(result.summary)
    print_summary(summary, result.run_dir, result.manifest)
    gated = summary.gate.get("status") in ("pass", "fail", "error")
    code = print_gate(GateResult.model_validate(summary.gate)) if gated else 0
    print_decision(summary)  # the answer the run exists for, last
    raise typer.Exit(code)


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
        fail_input(InputError("--k", f"expected positive integers separated by commas, got {k!r}"))
    try:
        cfg = load_config(config)
        if not cfg.retrievers:
            raise InputError(str(config), "no retrievers to compare", field="retrievers")
        from harness.run.write import check_runs_dir

        check_runs_dir(Path(cfg.runs_dir), cfg.source, latest=False)  # before any work: where it writes
        _quiet_libraries()
        from harness.run.retrieval import evaluate_retrievers

        run_dir, result = evaluate_retrievers(cfg, ks)
    except InputError as e:
        fail_input(e)
    print_retrieval(result, run_dir)


@app.command()
def gate(
    run: Annotated[Path, typer.Option("--run", help="A run folder (runs/<run-id> or runs/latest).")],
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="The blessed baseline JSON [default: the config's gate.blessed]."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Take the rules from this config, not the run's.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write the result as JUnit XML.")] = None,
) -> None:
    """Check a run against the blessed baseline. Exit 0 pass, 1 regression, 2 error."""
    from harness.run.write import check_output_file, write_junit_file
    from reports import gate as gating

    try:
        if junit is not None:
            check_output_file(junit, "--junit")
        rows, summary, manifest = gating.read_run(run)
        gate_cfg = _gate_section(manifest, config)
        rules = gate_cfg.get("rules") or []
        if not rules:
            raise gating.GateError(f"{config or run}: no gate rules (add `gate.rules` to the config)")
        blessed = baseline or gating.blessed_file(gate_cfg)
        # as the gate inside `ragvft bench` checked it: the same call, with what the run recorded
        result = gating.check_run(rows, blessed, rules, **gating.run_settings(summary, manifest))
        if junit is not None:
            write_junit_file(junit, summary.model_dump() | {"gate": result.dump()})
    except (InputError, gating.GateError) as e:
        fail_input(e)
    raise typer.Exit(print_gate(result))


def _gate_section(manifest: dict[str, Any], config: Path | None) -> dict[str, Any]:
    """The gate's settings (rules, blessed file): the run's own, as its manifest records its config,
    or those of `config` when given."""
    if config is None:
        return (manifest.get("config") or {}).get("gate") or {}
    from harness.config import load_config

    cfg = load_config(config)
    return cfg.gate.model_dump() if cfg.gate else {}


@app.command()
def bless(
    run: Annotated[Path, typer.Option("--run", help="The run to bless (runs/<run-id> or runs/latest).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the baseline [default: the run's gate.blessed]."),
    ] = None,
) -> None:
    """Make a run the blessed baseline that `ragvft gate` and gated benches compare against."""
    from reports import gate as gating

    try:
        if out is None:
            _, _, manifest = gating.read_run(run)
            out = gating.blessed_file((manifest.get("config") or {}).get("gate") or {})
        blessed = gating.bless(run, out)
    except (InputError, gating.GateError) as e:
        fail_input(e)
    typer.echo(f"blessed run {blessed['run_id']} ({len(blessed['variants'])} variants) -> {out}")


@app.command()
def calibrate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Bench configuration (YAML).")] = Path(
        "bench.yaml"
    ),
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds", help="Training seeds, comma-separated [default: training.seeds, else 3 seeds]."
        ),
    ] = None,
) -> None:
    """Train every adapter once per seed and propose gate margins from the measured seed noise."""
    from harness.config import load_config

    try:
        cfg = load_config(config)
        chosen = _calibration_seeds(cfg, seeds)
    except InputError as e:
        fail_input(e)
    _quiet_libraries()
    from harness.run.calibrate import calibrate as run_calibrate

    try:
        run_dir, proposals = run_calibrate(cfg, chosen)
    except InputError as e:
        fail_input(e)
    print_calibration(proposals, chosen, run_dir)


def _calibration_seeds(cfg: BenchConfig, seeds: str | None) -> list[int]:
    """The seeds `ragvft calibrate` trains with: `--seeds`, else the config's `training.seeds` (when
    several), else three from its `seed`; two or more, distinct, each one a generator takes."""
    from harness.config.inputs import SEEDS

    if seeds is not None:
        try:
            chosen = [int(x) for x in seeds.split(",") if x.strip()]
        except ValueError:
            raise InputError("--seeds", f"expected integers separated by commas, got {seeds!r}") from None
    elif cfg.training.seeds and len(cfg.training.seeds) > 1:
        chosen = list(cfg.training.seeds)
    else:
        chosen = [cfg.seed, cfg.seed + 1, cfg.seed + 2]
    if len(chosen) < 2 or len(set(chosen)) != len(chosen):
        raise InputError("--seeds", f"expected two or more distinct integers, got {seeds!r}")
    if bad := [x for x in chosen if not 0 <= x < SEEDS]:
        message = f"a seed is a whole number from 0 to {SEEDS - 1} (2**32 - 1), got {bad[0]}"
        if seeds is not None:
            raise InputError("--seeds", message)
        # the config's seed is one, but seed + 1 or seed + 2 (training.seeds' are checked at load) is not
        raise InputError(cfg.source, f"{message} (seed + 1, seed + 2): give --seeds", field="seed")
    return chosen


models_app = typer.Typer(help="The built-in models shipped with ragvft.", no_args_is_help=True)
app.add_typer(models_app, name="models")


MODEL_PARTS = ("base", "judge", "adapters", "calibration")


@models_app.command("build")
def models_build(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write them (the project ships harness/builtin/shipped).")
    ] = Path("harness/builtin/shipped"),
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Build only these (repeatable): base, judge, adapters, calibration (the judge's pairwise "
            "logit bias, fitted on the shipped adapters' answers). The others are taken as shipped.",
        ),
    ] = None,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The bench whose adapters are shipped.")
    ] = Path("bench.yaml"),
) -> None:
    """Build the built-in base model, its judge and the embedded default's adapters from their recipes
    (training what is not cached) and write each as safetensors files under 5 MB with its model card:
    for maintainers, after changing a recipe."""
    _quiet_libraries()
    from harness.builtin.basemodel import BaseModelSpec
    from harness.builtin.judge_model import JudgeSpec, build_judge
    from harness.builtin.shipped import ship_base, shipped_base

    parts = list(only or MODEL_PARTS)
    if unknown := [p for p in parts if p not in MODEL_PARTS]:
        typer.echo(f"error: --only {unknown[0]!r}: choose from {', '.join(MODEL_PARTS)}", err=True)
        raise typer.Exit(2)
    spec = BaseModelSpec()
    base = ship_base(spec, out) if "base" in parts else shipped_base(spec, out)
    if base is None:
        typer.echo(
            f"error: no shipped base model in {out} for the default recipe: build it (--only base)", err=True
        )
        raise typer.Exit(2)
    folders = [base] if "base" in parts else []
    if "judge" in parts:
        folders.append(build_judge(base, spec, JudgeSpec(), out))
    if "adapters" in parts:
        folders += _ship_adapters(config, out)
    if "calibration" in parts or "judge" in parts:
        _judge_calibration(out, base, fit="calibration" in parts)
    for folder in folders:
        sizes = sorted((f.stat().st_size, f.name) for f in folder.iterdir())
        typer.echo(
            f"wrote {folder}: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for size, name in sizes[-3:])
        )


def _ship_adapters(config: Path, out: Path) -> list[Path]:
    """The adapters of the bench `config`, trained when missing, written under `out`."""
    from harness.artifacts.adapters import ship_adapters
    from harness.config import load_config

    try:
        return ship_adapters(load_config(config), out)
    except InputError as e:
        fail_input(e)


def _judge_calibration(out: Path, base: Path, *, fit: bool) -> None:
    """Fit the shipped judge's pairwise logit bias on the shipped adapters' answers (`fit`), or remove
    the one fitted on the judge's old weights."""
    from harness.builtin.judge_calibration import CALIBRATION, calibrate_judge

    judge = out / "judge"
    if fit:
        adapters = sorted(p.parent for p in (out / "adapters").glob("*/adapter_config.json"))
        record = calibrate_judge(judge, base, adapters)
        typer.echo(
            f"wrote {judge / CALIBRATION}: pairwise bias {record['verdicts']} on {record['pairs']:,} pairs, "
            f"position consistency {record['before']['position_consistency']} -> "
            f"{record['after']['position_consistency']}"
        )
    else:  # a new judge's weights: a bias fitted on the old ones no longer holds
        (judge / CALIBRATION).unlink(missing_ok=True)
        typer.echo(f"note: calibrate the new judge with --only calibration (removed {CALIBRATION})")


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
        fail_input(e)
    name = "ragvft_" + re.sub(r"[^A-Za-z0-9_]+", "_", cfg.name)
    yaml_path = export_task(suite, out, name=name, max_new_tokens=cfg.generation.max_new_tokens)
    n = sum(1 for q in suite.questions if q.answers)
    typer.echo(f"wrote {yaml_path}, {yaml_path.with_suffix('.jsonl')} ({n} questions) and {out / 'utils.py'}")
    base = cfg.model.path or "<base folder>"  # the built-in model's folder exists only once it is built
    typer.echo("run it with:")
    typer.echo("  " + lmeval_command(yaml_path.parent, name, base=base, adapter="<adapter folder>"))


@app.command()
def review(
    run: Annotated[Path, typer.Option("--run", help="A run folder (runs/<run-id> or runs/latest).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The page to write [default: RUN/review.html].")
    ] = None,
) -> None:
    """Write one offline HTML page on which domain experts label the run's questions and answers;
    its "Export labels" file goes back in with `ragvft labels import`."""
    from reports.review import write_run_review

    try:
        typer.echo(write_run_review(run, out or Path(run) / "review.html"))
    except InputError as e:
        fail_input(e)


labels_app = typer.Typer(help="People's labels on a run (from `ragvft review`).", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="A labels JSON file exported from the review page.")],
    run: Annotated[Path, typer.Option("--run", help="The run the labels are about.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Take `labels.exclude_invalid` from this config, not the run's."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace the labels attached to the run with the file's (without it: add to them).",
        ),
    ] = False,
) -> None:
    """Check the labels against the run (questions, variants, labels, suite fingerprint), attach them
    as RUN/labels.json and re-render the run's summary and reports with the agreement with people.
    Labels attached before are kept: the file's are added to them, and a file that labels an answer or
    a question otherwise than they do is refused unless --replace (the file's labels then replace them
    all). A file with no labels is refused."""
    from harness.config import load_config
    from reports.labels import attach_labels, describe

    try:
        exclude_invalid = load_config(config).labels.exclude_invalid if config is not None else None
        figures, kept = attach_labels(run, file, exclude_invalid=exclude_invalid, replace=replace)
    except InputError as e:
        fail_input(e)
    typer.echo(describe(figures, run, kept))


app.command()(synth)  # last, as `ragvft --help` lists it

if __name__ == "__main__":
    app()
