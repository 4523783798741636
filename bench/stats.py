"""Summaries and result rows: every figure is reported as min/median/max over its runs.

The machine is shared and noisy, so a single number means little; the spread tells the
reader how much to trust the median, and ratios are taken between runs made side by side.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Summary:
    """min/median/max of one figure over `runs` runs."""

    min: float
    median: float
    max: float
    runs: int


def summarize(values: Iterable[float]) -> Summary:
    """min/median/max; NaN values (a run that could not produce the figure) are left out."""
    kept = sorted(v for v in values if not math.isnan(v))
    if not kept:
        raise ValueError("no values to summarize")
    return Summary(kept[0], statistics.median(kept), kept[-1], len(kept))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Pairwise ratios of runs made side by side; a zero denominator gives NaN (no ratio)."""
    if len(numerators) != len(denominators):
        raise ValueError("ratio needs paired runs")
    return [n / d if d else math.nan for n, d in zip(numerators, denominators, strict=True)]


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of one case of one benchmark; the table and results.md are built from rows."""

    case: str
    metric: str
    values: tuple[float, ...]
    unit: str = ""
    note: str = ""

    @property
    def summary(self) -> Summary | None:
        kept = [v for v in self.values if not math.isnan(v)]
        return summarize(kept) if kept else None


def row(case: str, metric: str, values: Iterable[float], unit: str = "", note: str = "") -> Row:
    return Row(case, metric, tuple(float(v) for v in values), unit, note)


@dataclass(frozen=True, slots=True)
class Target:
    """A goal the issue sets, and whether this run met it (None: could not be judged)."""

    name: str
    goal: str
    met: bool | None
    detail: str = ""


@dataclass(slots=True)
class Section:
    """What one benchmark returns: rows, targets, and notes on how it measured."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def fmt(value: float) -> str:
    """Three significant figures for most values; integers stay whole."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞"
    whole = round(value)
    if abs(value - whole) <= 1e-9 * max(1.0, abs(value)) and abs(value) < 1e15:
        return f"{whole:,}"  # counts, and floats like 164.99999999 from CPU ticks
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
