"""The suite a config names, loaded from its (already absolute) paths, with any extra SFT pairs,
extra preference pairs (`training.extra_preferences`) and KTO feedback (`training.kto.feedback`): in
the suite, the leakage check sees them like the rest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import BenchConfig
from suites.schema import Suite

if TYPE_CHECKING:
    from suites.preferences import PreferenceFile


def load_suite(config: BenchConfig) -> Suite:
    suite = _load(config)
    if config.training.extra_sft:
        from suites.jsonl import read_jsonl
        from suites.schema import QAPair

        ids = {p.id for p in suite.passages}
        extra = tuple(
            QAPair(
                row["question"].strip(),
                row["answer"].strip(),
                fact_id=f"extra-{n}",
                passage_ids=_passage_ids(row, ids, config.training.extra_sft, n),
            )
            for n, row in read_jsonl(config.training.extra_sft, {"question": str, "answer": str})
        )
        suite = replace(suite, training=replace(suite.training, sft=suite.training.sft + extra))
    if config.training.extra_preferences:
        from suites.preferences import read_preferences

        pairs = _noted(read_preferences(config.training.extra_preferences, fact_prefix="extra-pref-"))
        training = suite.training
        suite = replace(suite, training=replace(training, preferences=training.preferences + pairs.pairs))
    kto = (config.training.model_extra or {}).get("kto")
    if kto is not None and kto.feedback:
        from suites.jsonl import read_jsonl
        from suites.schema import Feedback

        rows = read_jsonl(kto.feedback, {"question": str, "answer": str, "label": bool})
        feedback = tuple(
            Feedback(row["question"].strip(), row["answer"].strip(), row["label"], fact_id=f"feedback-{n}")
            for n, row in rows
        )
        suite = replace(suite, training=replace(suite.training, feedback=suite.training.feedback + feedback))
    return suite


def _passage_ids(row: dict, known: set[str], path: str, line: int) -> tuple[str, ...]:
    """An extra SFT row's optional `passage_ids`: the corpus passages that hold its answer (what RAFT
    puts in the prompt)."""
    from core.errors import InputError

    ids = row.get("passage_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError(path, "expected a list of passage ids", line=line, field="passage_ids")
    for i in ids:
        if i not in known:
            raise InputError(
                path, f"passage {i!r} is not in the suite's corpus", line=line, field="passage_ids"
            )
    return tuple(ids)


def _load(config: BenchConfig) -> Suite:
    s = config.suite
    if s.builtin is not None:
        from suites.builtin import builtin_suite

        b = s.builtin
        return builtin_suite(b.seed, scale=b.scale, corpus_only_fraction=b.corpus_only_fraction)
    chunking = s.chunking
    if s.jsonl is not None:
        from suites.jsonl import load_jsonl_suite

        return load_jsonl_suite(
            s.jsonl.corpus, s.jsonl.questions, name=f"jsonl-{Path(s.jsonl.questions).stem}"
        )
    if s.hh_rlhf is not None:
        from suites.preferences import hh_rlhf_suite, read_preferences

        pairs = _noted(read_preferences(s.hh_rlhf.path, fact_prefix="hh-"))
        h = s.hh_rlhf
        return hh_rlhf_suite(pairs, test=h.test, limit=h.limit, max_words=h.max_words)
    if s.squad is not None:
        from suites.squad import load_squad

        return load_squad(
            s.squad.path,
            words=chunking.words if chunking else 100,
            overlap=chunking.overlap if chunking else 20,
            limit=s.squad.limit,
            answer_prefix_chars=s.squad.answer_prefix_chars,
        )
    from suites.pubmedqa import load_pubmedqa

    p = s.pubmedqa
    assert p is not None  # SuiteConfig names exactly one source: the last one left
    return load_pubmedqa(
        p.path,
        test_ids=p.test_ids,
        limit=p.limit,
        chunking=(chunking.words, chunking.overlap) if chunking else None,
    )


def _noted(pairs: PreferenceFile) -> PreferenceFile:
    """`pairs` (a `PreferenceFile`), once its one-line note (pairs read, rows skipped and why) is on
    stderr: skipped rows are counted aloud, never dropped in silence."""
    from core.progress import console

    console.print(pairs.note(), highlight=False, soft_wrap=True)
    return pairs
