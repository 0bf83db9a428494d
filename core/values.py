"""What counts as a value: shared by every place that averages, pairs or gates scores."""

from __future__ import annotations

import math


def determined(value: float | None) -> bool:
    """A value that was scored: not None (undetermined) and not NaN."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))
