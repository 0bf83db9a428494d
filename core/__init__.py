"""Shared ground for every layer: errors, cache keys and folders, progress bars, device facts.

It imports nothing of the project, so suites, retrievers, judges, reports and the harness can all
use it without an import cycle.
"""
