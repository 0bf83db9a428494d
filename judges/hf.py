"""An in-process judge: any causal LM (hub id or folder), optionally with a PEFT adapter, through the
same loading and batched greedy decoding as the variants (harness.backend)."""

from __future__ import annotations

from collections.abc import Sequence

from judges.http import Reply


class HFJudge:
    """The `complete(prompts) -> [Reply]` interface of every judge backend, on a local model."""

    def __init__(
        self,
        path: str,
        adapter: str | None = None,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        max_new_tokens: int = 96,
        batch_size: int = 32,
    ):
        from harness.backend import HFBackend

        self.backend = HFBackend(
            path,
            revision=revision,
            trust_remote_code=trust_remote_code,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            one_line=False,  # a judge's JSON may span lines
        )
        self.adapter = None
        if adapter is not None:
            self.adapter = "judge"
            self.backend.add_adapter(self.adapter, adapter)

    def complete(self, prompts: Sequence[str], *, progress=None) -> list[Reply]:
        done = self.backend.generate(list(prompts), adapter=self.adapter, progress=progress)
        return [Reply(c.text, None, 1) for c in done]
