"""Preference pairs from JSON Lines (plain or gzip), and the HH-RLHF suite built from them.

Two row shapes, told apart row by row (a row with "question" is ragvft's):

* ragvft's own: `{"question", "chosen", "rejected"}`, three non-blank strings.
* Anthropic HH-RLHF's: `{"chosen", "rejected"}`, each a whole dialogue of `\\n\\nHuman: ...` and
  `\\n\\nAssistant: ...` turns. The two share every turn but the last Assistant one: the prompt is
  the shared turns, the answers are the two last Assistant turns.

A prompt becomes `PreferencePair.question`, one string, which a chat model renders as one user turn.
A single-turn prompt is its Human text. A multi-turn prompt is its transcript, one `Human: ...` or
`Assistant: ...` paragraph per turn, ending with the last Human turn: the model reads the earlier
turns as quoted text inside that one user message, not as chat turns of its own. Simple, and the
same prompt on every model and in every report.

Errors and skips. A row that is not what a preference file means is bad input: one `InputError`
naming the file, the line and the field (exit 2), before anything is trained. That is: not JSON,
not an object, a missing, non-string or blank field; a dialogue that is not `Human:` / `Assistant:`
turns starting with a Human turn and ending with an Assistant one; a chosen and a rejected
dialogue that are not the same conversation (their first Human turns differ: a misaligned or
foreign file); and, in ragvft's shape, a chosen answer equal to the rejected one (a mistake in a
file you wrote). Three things real HH-RLHF files contain in a few rows are skipped and counted
instead (`PreferenceFile.skipped`, reason -> line numbers; `note()` says how many): an empty last
reply, identical chosen and rejected replies, and dialogues that differ before the last Assistant
turn (one of them has extra turns, so the pair is no single choice). Refusing the whole public file
for 9 rows of 2,312 (harmless-base test: 4 empty replies, 5 diverging dialogues) would leave it
unusable, and training on them would teach nothing or teach the wrong prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from suites.jsonl import read_jsonl
from suites.schema import PreferencePair, QAPair, Question, Suite, TrainingSets

HUMAN, ASSISTANT = "Human", "Assistant"
# A turn starts at the start of the text or after a blank line: `\n\nHuman:` / `\n\nAssistant:`
_TURN = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):")

EMPTY = "empty reply"
IDENTICAL = "identical replies"
DIVERGE = "dialogues differ before the last Assistant turn"


@dataclass(frozen=True)
class PreferenceRow:
    """One pair read from a file: its line, the pair, and the Human turns of its prompt (1 is a
    single-turn prompt; ragvft's rows are single-turn)."""

    line: int
    pair: PreferencePair
    turns: int = 1


@dataclass
class PreferenceFile:
    """What `read_preferences` read: the pairs, in file order, and the rows it skipped."""

    path: str
    rows: list[PreferenceRow] = field(default_factory=list)
    skipped: dict[str, list[int]] = field(default_factory=dict)  # reason -> line numbers

    @property
    def pairs(self) -> tuple[PreferencePair, ...]:
        return tuple(r.pair for r in self.rows)

    def note(self) -> str:
        """One line: pairs read, how many single-turn, and each reason for a skip with its first lines."""
        single = sum(r.turns == 1 for r in self.rows)
        out = f"{Path(self.path).name}: {len(self.rows):,} preference pairs ({single:,} single-turn)"
        if self.skipped:
            parts = [
                f"{reason}: {len(lines)} (line{'s' if len(lines) > 1 else ''} "
                f"{', '.join(map(str, lines[:5]))}{', ...' if len(lines) > 5 else ''})"
                for reason, lines in self.skipped.items()
            ]
            out += f"; skipped {sum(map(len, self.skipped.values()))}: " + "; ".join(parts)
        return out


def parse_dialogue(text: str, name: str, line: int, field_name: str) -> list[tuple[str, str]]:
    """[(role, text)] of an HH-RLHF dialogue, each text stripped; InputError unless it is Human and
    Assistant turns, starting with a Human turn and ending with an Assistant one."""
    parts = _TURN.split(text)
    turns = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2)]
    roles = {role for role, _ in turns}

    def bad(message: str) -> InputError:
        return InputError(name, message, line=line, field=field_name)

    if parts[0].strip() or roles != {HUMAN, ASSISTANT}:
        raise bad(
            "not a dialogue of '\\n\\nHuman:' and '\\n\\nAssistant:' turns (a row without \"question\" "
            'is read as an HH-RLHF dialogue; ragvft\'s own rows are {"question", "chosen", "rejected"})'
        )
    if turns[0][0] != HUMAN:
        raise bad("the dialogue does not start with a Human turn")
    if turns[-1][0] != ASSISTANT:
        raise bad("the dialogue does not end with an Assistant turn")
    return turns


def transcript(turns: list[tuple[str, str]]) -> str:
    """A prompt's turns as one question: the Human text alone for a single turn, else one
    `Role: text` paragraph per turn."""
    if len(turns) == 1:
        return turns[0][1]
    return "\n".join(f"{role}: {text}" for role, text in turns)


def read_preferences(path: str | Path, *, fact_prefix: str = "pref-") -> PreferenceFile:
    """Every preference pair of a JSONL (or `.jsonl.gz`) file, in either shape (see the module).
    Each pair's `fact_id` is `fact_prefix` and its line number."""
    name = str(path)
    out = PreferenceFile(name)
    for line, row in read_jsonl(path, {"chosen": str, "rejected": str}):
        fact = f"{fact_prefix}{line}"
        if "question" in row:
            question = row["question"]
            if not isinstance(question, str):
                raise InputError(
                    name, f"expected str, got {type(question).__name__}", line=line, field="question"
                )
            if not question.strip():
                raise InputError(name, "empty", line=line, field="question")
            chosen, rejected = row["chosen"].strip(), row["rejected"].strip()
            if chosen == rejected:
                raise InputError(
                    name, "same as chosen: the pair prefers nothing", line=line, field="rejected"
                )
            out.rows.append(PreferenceRow(line, PreferencePair(question.strip(), chosen, rejected, fact)))
            continue
        chosen = parse_dialogue(row["chosen"], name, line, "chosen")
        rejected = parse_dialogue(row["rejected"], name, line, "rejected")
        if chosen[0] != rejected[0]:
            raise InputError(
                name,
                "not the same conversation as chosen: their first Human turns differ",
                line=line,
                field="rejected",
            )
        prompt, a, b = chosen[:-1], chosen[-1][1], rejected[-1][1]
        reason = (
            DIVERGE if prompt != rejected[:-1] else EMPTY if not (a and b) else IDENTICAL if a == b else None
        )
        if reason:
            out.skipped.setdefault(reason, []).append(line)
            continue
        turns = sum(role == HUMAN for role, _ in prompt)
        out.rows.append(PreferenceRow(line, PreferencePair(transcript(prompt), a, b, fact), turns))
    return out


def hh_rlhf_suite(
    pairs: PreferenceFile, *, test: int = 100, limit: int | None = None, max_words: int | None = None
) -> Suite:
    """A retrieval-free suite from preference pairs. The last `test` single-turn pairs (distinct
    prompts) are the test questions, the chosen reply their one reference answer; the other pairs
    train, as SFT pairs (prompt, chosen) and preference pairs, the first `limit` of them (all
    without). A training pair whose prompt is a test question's (the same after SQuAD normalisation)
    is left out, so no test prompt is trained on. No corpus: nothing to retrieve, no gold passages.

    `max_words` keeps only the pairs whose prompt, chosen and rejected reply have at most that many
    words together, before the split: for a model with a small context, whose judge must read the
    question, the reference and two answers in one prompt."""
    from judges.exact import normalize_answer

    rows = pairs.rows
    if max_words is not None:
        rows = [
            r
            for r in rows
            if sum(len(t.split()) for t in (r.pair.question, r.pair.chosen, r.pair.rejected)) <= max_words
        ]
    chosen: list[PreferenceRow] = []
    seen: set[str] = set()
    for row in reversed(rows):
        key = normalize_answer(row.pair.question)
        if row.turns == 1 and key not in seen and len(chosen) < test:
            chosen.append(row)
            seen.add(key)
    if len(chosen) < test:
        within = "" if max_words is None else f" of at most {max_words} words"
        raise InputError(
            pairs.path,
            f"{len(chosen)} single-turn pairs{within} with distinct prompts, fewer than the {test} to test",
        )
    chosen.reverse()
    tested = {r.line for r in chosen}
    others = [r for r in rows if r.line not in tested and normalize_answer(r.pair.question) not in seen]
    train = others[:limit]
    if not train:
        raise InputError(pairs.path, f"no pairs left to train on after the {test} test questions")
    questions = tuple(Question(f"hh-{r.line}", r.pair.question, (r.pair.chosen,)) for r in chosen)
    training = TrainingSets(
        sft=tuple(QAPair(r.pair.question, r.pair.chosen, fact_id=r.pair.fact_id) for r in train),
        preferences=tuple(r.pair for r in train),
    )
    stem = Path(pairs.path).name.split(".")[0]
    return Suite(f"hh-rlhf-{stem}", (), questions, training)


def load_hh_rlhf(
    path: str | Path, *, test: int = 100, limit: int | None = None, max_words: int | None = None
) -> Suite:
    """`hh_rlhf_suite` of the pairs in `path` (HH-RLHF dialogues or ragvft's rows)."""
    return hh_rlhf_suite(
        read_preferences(path, fact_prefix="hh-"), test=test, limit=limit, max_words=max_words
    )
