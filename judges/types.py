from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one answer. `value` None means undetermined: it is counted as such
    and never averaged in as zero. `reason` says why (matched span, judge rationale, failure)."""

    metric: str
    value: float | None
    reason: str = ""
    label: str | None = None  # for label metrics: the label the answer gave
