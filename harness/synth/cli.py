"""The `ragvft synth` command (registered in harness.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import InputError
from harness.console import fail_input, quiet_libraries

if TYPE_CHECKING:
    from harness.config.synth import GeneratorConfig


def synth(
    out: Annotated[Path, typer.Option("--out", help="The suite folder to write (must not exist yet).")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Bench configuration (YAML).")] = Path(
        "bench.yaml"
    ),
    docs: Annotated[
        Path | None,
        typer.Option(
            "--docs", help="A folder of .txt/.md documents (default: synth.docs, else the suite's corpus)."
        ),
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator",
            help="builtin, or a hub id / model folder on the hf engine (default: synth.generator, else builtin).",
        ),
    ] = None,
) -> None:
    """Write a JSONL suite (corpus.jsonl, questions.jsonl) from the config's corpus or a folder of
    documents: a generator model writes a question per passage, each kept only if its answer is in the
    passage, the base model reading the passage gives it back, and it is neither a near-duplicate nor a
    leak; synth-report.html says what was kept and what was dropped and why."""
    from harness.config import load_config

    try:
        cfg = load_config(config)
        chosen = _generator(generator)
        quiet_libraries()
        from harness.synth import synthesize

        result = synthesize(cfg, out, docs=docs, generator=chosen)
    except InputError as e:
        fail_input(e)
    s = result.summary
    dropped = ", ".join(f"{r} {n}" for r, n in s["dropped"].items() if n) or "none"
    typer.echo(f"kept {s['kept']} of {s['candidates']} questions (dropped: {dropped})")
    typer.echo(
        f"wrote {out}/questions.jsonl, corpus.jsonl ({s['corpus_passages']} passages), synth-report.html"
    )
    typer.echo(f"use it: suite: {{jsonl: {{corpus: {out}/corpus.jsonl, questions: {out}/questions.jsonl}}}}")


def _generator(value: str | None) -> GeneratorConfig | None:
    """`--generator`: None (the config's), builtin, or a hub id / folder for the hf engine."""
    from harness.config.synth import GeneratorConfig
    from harness.training.question_writer import QuestionWriterTraining

    if value is None:
        return None
    if value == "builtin":
        return GeneratorConfig(builtin=QuestionWriterTraining())
    from harness.pretrained import gguf
    from harness.pretrained.packaged import locate

    try:
        value = locate(value)  # a packaged model, fetched by `make real-models`
    except LookupError as e:
        raise InputError(value, str(e), field="--generator") from None
    local = Path(value).expanduser()
    if value.startswith((".", "/", "~")) or local.exists():
        if gguf.gguf_file(value, None) is not None:
            gguf.check(local, value, "--generator")
        elif not local.is_dir():
            raise InputError(value, "no such model folder", field="--generator")
        return GeneratorConfig(path=str(local.resolve()))
    return GeneratorConfig(path=value)
