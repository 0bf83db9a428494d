"""Aggregation, statistics and writers (HTML, JSON); `load_results` gives a run as a DataFrame."""

from reports.table import load_results

__all__ = ["load_results"]
