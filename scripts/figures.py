"""Medians and percentiles for the benchmark scripts' reports."""

from __future__ import annotations

import statistics


def percentile(values: list[float], fraction: float) -> float:
    """Return the value below which `fraction` of values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def spread(values: list[float]) -> dict[str, float]:
    """Return the median and the 95th percentile."""
    return {"median": statistics.median(values), "p95": percentile(values, 0.95)}
