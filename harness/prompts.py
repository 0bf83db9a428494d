"""The prompt formats, one home for every prompt a model reads: generation, training rows (SFT, DPO, the
built-in judge) and judge calls.

Raw text (`Question: ...\nAnswer:`) for a base model without a chat template: the built-in base model is
trained on exactly these, so a variant's prompt and its curriculum can never drift apart. For an
instruct model (`model.chat_template`: auto and the tokenizer has one, or true) the same question
becomes chat messages (an optional system prompt, the user turn) rendered by the tokenizer's own
template with the generation prompt added; training rows are TRL's conversational format, so TRL
renders them through the same template and puts the loss on the assistant turn only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from suites.schema import QAPair, Question

DEFAULT_SYSTEM = "Answer the question in a few words. When passages are given, answer from them."


def closed_book(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def with_passages(question: str, passages: Sequence[str]) -> str:
    numbered = "\n".join(f"[{i}] {text}" for i, text in enumerate(passages, 1))
    return f"Passages:\n{numbered}\n{closed_book(question)}"


def build(question: str, passages: Sequence[str] | None) -> str:
    """Closed-book when `passages` is None, else the retrieval-augmented prompt (raw text)."""
    return closed_book(question) if passages is None else with_passages(question, passages)


def question_prompt(passage: str, types: Sequence[str]) -> str:
    """`ragvft synth`'s instruction to a generator: one question the passage answers, as JSON. The
    passage comes first, so a prompt cut to fit a small context loses the passage's start, never the
    instruction."""
    kinds = ", ".join(types[:-1]) + f" or {types[-1]}" if len(types) > 1 else "".join(types)
    return (
        f"Passage: {passage}\nA question the passage answers, as JSON with question, answer (copied "
        f"from the passage) and type ({kinds}):"
    )


def user_turn(question: str, passages: Sequence[str] | None) -> str:
    """The user's message of a chat prompt: the passages (if any), then the question."""
    if passages is None:
        return f"Question: {question}"
    numbered = "\n".join(f"[{i}] {text}" for i, text in enumerate(passages, 1))
    return f"Passages:\n{numbered}\n\nQuestion: {question}"


@dataclass(frozen=True)
class PromptFormat:
    """How prompts reach one model: raw text, or chat messages through its tokenizer's template.

    `key()` is what cache keys hash of it; the rendered prompt text itself goes into every generation
    key, so a changed template or system prompt never reuses an answer."""

    chat: bool = False
    system: str | None = None  # the system prompt of chat prompts (None: no system turn)
    tokenizer: Any = field(default=None, compare=False, repr=False)  # renders the template (chat only)
    # the BOS text the template writes and the tokenizer also adds by itself: left out of the text
    added_bos: str | None = field(default=None, compare=False, repr=False)
    # worked examples (question, answer) before a generation prompt's question (`generation.fewshot`);
    # never in training rows or judge prompts
    shots: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        chat_template: bool | str = "auto",
        system: str | None = DEFAULT_SYSTEM,
    ) -> PromptFormat:
        """The format for a model with this tokenizer: `chat_template` auto uses the tokenizer's
        template when it has one; true requires one (ValueError without); false never uses it."""
        has = bool(getattr(tokenizer, "chat_template", None))
        if chat_template is True and not has:
            raise ValueError("the tokenizer has no chat template: set `chat_template: false` (or auto)")
        chat = has if chat_template == "auto" else bool(chat_template)
        if not chat:
            return cls()
        bos = tokenizer.bos_token if _adds_bos(tokenizer) else None  # asked once, not per prompt
        return cls(chat=True, system=system, tokenizer=tokenizer, added_bos=bos)

    @property
    def template(self) -> str | None:
        return self.tokenizer.chat_template if self.chat else None

    def key(self) -> dict:
        if not self.chat:
            return {"chat": False}
        from core.cache import digest

        return {"chat": True, "system": self.system, "template": digest(self.template)}

    # --- messages -------------------------------------------------------------------------------
    def messages(self, question: str, passages: Sequence[str] | None) -> list[dict[str, str]]:
        """A question's chat messages: the system prompt (if any) and the user turn."""
        return _turns(self.system, user_turn(question, passages))

    def render(self, messages: list[dict[str, str]]) -> str:
        """Chat messages as the text the model reads: the template with its generation prompt. A BOS
        token the tokenizer adds by itself is left out of the text (it would be there twice)."""
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if self.added_bos and text.startswith(self.added_bos):
            text = text[len(self.added_bos) :]
        return text

    # --- what engines read ----------------------------------------------------------------------
    def prompt(self, question: str, passages: Sequence[str] | None) -> str:
        """The exact text a model reads for a question (closed-book when `passages` is None), after
        the few-shot examples if any: earlier turns of the chat, or earlier `Question:` lines."""
        if not self.chat:
            return "".join(f"{closed_book(q)} {a}\n\n" for q, a in self.shots) + build(question, passages)
        messages = self.messages(question, passages)
        turns = [
            m
            for q, a in self.shots
            for m in ({"role": "user", "content": user_turn(q, None)}, _assistant(a)[0])
        ]
        at = 1 if messages[0]["role"] == "system" else 0
        return self.render(messages[:at] + turns + messages[at:])

    def with_shots(self, shots: Sequence[tuple[str, str]]) -> PromptFormat:
        return replace(self, shots=tuple(shots))

    def instruction(self, text: str) -> str:
        """A self-contained instruction (a judge's prompt) as the model reads it: one user turn, no
        system prompt (the instruction carries its own)."""
        return self.render(_turns(None, text)) if self.chat else text

    # --- training rows (TRL's formats) ----------------------------------------------------------
    def completion_row(self, question: str, answer: str, passages: Sequence[str] | None = None) -> dict:
        """An SFT row: prompt-completion; conversational for a chat model (loss on the assistant turn).
        A raw completion starts with a space and TRL ends it with EOS, as the base model answers."""
        if not self.chat:
            return {"prompt": build(question, passages), "completion": " " + answer}
        return {"prompt": self.messages(question, passages), "completion": _assistant(answer)}

    def instruction_row(self, text: str, reply: str) -> dict:
        """An SFT row for a self-contained instruction (the built-in judge's training)."""
        if not self.chat:
            return {"prompt": text, "completion": " " + reply}
        return {"prompt": _turns(None, text), "completion": _assistant(reply)}

    def preference_row(self, question: str, chosen: str, rejected: str) -> dict:
        """A DPO row: prompt, chosen and rejected; conversational for a chat model."""
        if not self.chat:
            return {"prompt": build(question, None), "chosen": " " + chosen, "rejected": " " + rejected}
        return {
            "prompt": self.messages(question, None),
            "chosen": _assistant(chosen),
            "rejected": _assistant(rejected),
        }

    def feedback_row(self, question: str, answer: str, label: bool) -> dict:
        """A KTO row: prompt, completion and whether it is desirable; conversational for a chat model."""
        if not self.chat:
            return {"prompt": build(question, None), "completion": " " + answer, "label": label}
        return {"prompt": self.messages(question, None), "completion": _assistant(answer), "label": label}


RAW = PromptFormat()  # the built-in base model's format


def _turns(system: str | None, user: str) -> list[dict[str, str]]:
    """The system turn (when there is a system prompt), then the user's."""
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": user}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    ids = tokenizer("x")["input_ids"]
    return bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id


def fewshot(pairs: Sequence[QAPair], question: Question, n: int) -> list[tuple[str, str]]:
    """`n` worked examples for `question` from training pairs (`suites.schema.QAPair`), in their order,
    never one about the question's own fact: a pair that shares a gold passage with it, or asks the
    same question. Chosen without looking at the answers, so which examples a prompt shows never hints
    at its gold answer (as leaving out every "yes" would on a yes/no/maybe suite)."""
    if n <= 0:
        return []
    own, asked = set(question.gold_passage_ids), _words(question.text)
    out = []
    for p in pairs:
        if own & set(p.passage_ids) or _words(p.question) == asked:
            continue
        out.append((p.question, p.answer))
        if len(out) == n:
            break
    return out


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())
