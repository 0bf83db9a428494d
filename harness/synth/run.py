"""`ragvft synth`: from documents to a suite. The corpus is the config's suite's passages (any suite
loader) or a folder of documents; a generator model writes one question per passage (at most
`synth.passages` of them); `suites.synth.check_candidates` keeps those that pass every check, the
config's base model reading the passage for the round trip; the kept questions are written as a
JSONL suite (`corpus.jsonl`, `questions.jsonl`) with `synth-report.html` and `synth.json`, into a
temporary folder renamed into place, so a failed run leaves nothing behind. When no question is kept
the run fails (exit 2) and writes no suite, but its report still says what every candidate was and why
it dropped; a folder that holds only such a report is replaced by the next try."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.cache import building
from core.errors import InputError
from harness.artifacts import load_suite, resolve_model
from harness.config.synth import GeneratorConfig, SynthConfig
from harness.engines import Decoding, Request
from harness.prompts import question_prompt
from harness.run.engine import LazyEngine
from harness.synth.generator import Generator, build_generator
from suites.schema import Passage
from suites.synth import (
    QUESTION_TYPES,
    Candidate,
    Outcome,
    check_candidates,
    corpus_rows,
    spread,
    suite_rows,
)

if TYPE_CHECKING:
    from harness.artifacts.model import BaseModel
    from harness.config import BenchConfig
    from suites.schema import Suite


@dataclass
class SynthResult:
    out: Path
    outcome: Outcome
    summary: dict  # what synth.json holds


def synthesize(
    config: BenchConfig, out: Path, *, docs: Path | None = None, generator: GeneratorConfig | None = None
) -> SynthResult:
    """Write the suite synthesised from `config`'s corpus (or the documents under `docs`) to `out`, a
    folder that must not exist yet (or be empty). `generator` (from the command line) overrides
    `synth.generator`. Bad input, or no question kept, is an InputError and `out` stays as it was."""
    s = config.synth or SynthConfig()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not _failed_before(out):
        raise InputError(
            str(out), "already exists and is not an empty folder: remove it or choose another", field="--out"
        )
    started = time.time()
    suite = load_suite(config)
    passages, source = _corpus(config, s, suite, docs)
    chosen = spread(passages, s.passages)
    base = resolve_model(config, {})
    reader = LazyEngine.for_base(config, base)
    where = "--generator" if generator is not None else "synth.generator"
    gen = build_generator(config, generator or s.generator, base, reader, field_name=where)
    try:
        replies = gen.ask([question_prompt(p.text, QUESTION_TYPES) for p in chosen])
        candidates = [Candidate(p, r) for p, r in zip(chosen, replies, strict=False)]  # one reply a prompt
        outcome = check_candidates(
            candidates,
            read=lambda pairs: _read(reader, base, config, pairs),
            training=suite.training,
            types=s.types,
            round_trip_f1=s.round_trip_f1,
            duplicate_threshold=s.duplicate_threshold or config.leakage.threshold,
            max_type_share=s.max_type_share,
            seed=config.seed,
        )
    finally:
        gen.engine.close()
        reader.close()
    counts = outcome.counts()
    summary = {
        "source": source,
        "suite": suite.name,
        "corpus_passages": len(passages),
        "passages_asked": len(chosen),
        "candidates": len(candidates),
        "kept": len(outcome.kept),
        "dropped": counts,
        "by_type": outcome.by_type(),
        "types": list(s.types),
        "settings": s.model_dump(exclude={"generator"})
        | {"duplicate_threshold": s.duplicate_threshold or config.leakage.threshold},
        "generator": gen.info,
        "reader": {"model": base.identity, "engine": reader.identity},
        "wall_time_s": round(time.time() - started, 2),
    }
    if not outcome.kept:  # no suite; the report says why, for the next try
        _write(out, passages, outcome, summary, gen, suite_files=False)
        raise _nothing_kept(
            config, outcome, counts, where, builtin=gen.builtin and base.spec is not None, out=out
        )
    _write(out, passages, outcome, summary, gen)
    return SynthResult(out, outcome, summary)


def _failed_before(out: Path) -> bool:
    """Whether `out` holds only what a run that kept nothing wrote (its report, no suite): the next
    try may replace it."""
    try:
        names = {p.name for p in out.iterdir()}
        return (
            names == {"synth.json", "synth-report.html"}
            and json.loads((out / "synth.json").read_text()).get("kept") == 0
        )
    except (OSError, ValueError):
        return False


def _corpus(
    config: BenchConfig, s: SynthConfig, suite: Suite, docs: Path | None
) -> tuple[list[Passage], dict]:
    """The passages to ask about and where they came from: a folder of documents (`--docs`, else
    `synth.docs`), chunked by `suite.chunking`, or the suite's own passages."""
    folder = docs if docs is not None else s.docs
    if folder is None:
        return list(suite.passages), {"kind": "suite", "name": suite.name}
    from suites.documents import read_documents

    chunking = config.suite.chunking
    found = read_documents(
        folder,
        words=chunking.words if chunking else 100,
        overlap=chunking.overlap if chunking else 20,
        what="--docs" if docs is not None else "synth.docs",
    )
    info = {"kind": "folder", "path": str(folder), "files": found.files, "skipped": found.skipped}
    return found.passages, info


def _read(
    reader: LazyEngine, base: BaseModel, config: BenchConfig, pairs: list[tuple[str, Passage]]
) -> list[str]:
    """The round trip's reader: the base model answers each question from its passage, in the rag
    variants' prompt (`harness.prompts`)."""
    from core.progress import progress_bar

    decoding = Decoding(max_new_tokens=config.generation.max_new_tokens)
    requests = [Request(base.prompt_format.prompt(q, [p.text]), decoding=decoding) for q, p in pairs]
    live = reader.get()
    with progress_bar("reading them back", len(requests)) as advance:
        return [c.text for c in live.generate(requests, progress=advance)]


def _nothing_kept(
    config: BenchConfig, outcome: Outcome, counts: dict, where: str, *, builtin: bool, out: Path
) -> InputError:
    """Why nothing was kept, in one line: every reply unparseable (the generator's fault), or the
    drops per reason; and where the report is (every candidate, why it dropped)."""
    n = len(outcome.candidates)
    hint = (
        "; the built-in models read only text like their own made-up domain: name a real generator "
        "(synth.generator.path) and base model (model.path)"
        if builtin
        else ""
    ) + f"; no suite written, every candidate in {out / 'synth-report.html'}"
    if counts["unparseable"] == n:
        first = outcome.candidates[0].reply if n else ""
        message = f"none of the generator's {n} replies parsed as a JSON question (first: {first[:80]!r})"
        return InputError(config.source, message + hint, field=where)
    why = ", ".join(f"{r} {c}" for r, c in counts.items() if c)
    return InputError(config.source, f"no question of {n} passed the checks ({why}){hint}", field="synth")


def _write(
    out: Path,
    passages: list[Passage],
    outcome: Outcome,
    summary: dict,
    gen: Generator,
    *,
    suite_files: bool = True,
) -> None:
    """The suite (unless `suite_files` is False: nothing was kept), synth.json and the report, built in
    a temporary folder renamed into place."""
    import shutil

    from harness.synth.report import render_report

    try:
        if out.is_dir():  # empty, or a failed run's report (checked): `building` renames into place
            shutil.rmtree(out)  # only where nothing is
        with building(out) as tmp:
            if suite_files:
                _jsonl(tmp / "corpus.jsonl", corpus_rows(passages))
                _jsonl(tmp / "questions.jsonl", suite_rows(outcome.kept))
            (tmp / "synth.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            (tmp / "synth-report.html").write_text(
                render_report(outcome, summary, builtin=gen.builtin), encoding="utf-8"
            )
    except OSError as e:
        raise InputError(str(out), f"cannot write it: {e.strerror or e}", field="--out") from None


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
