"""Smoke tests for `python -m bench`: the helpers are right and the workloads run.

No timing is asserted anywhere: figures depend on the machine. What is asserted is what a
benchmark relies on to mean anything (every evaluated person matches a rule, the fixed
workload really keeps its matches fixed, every hire lands).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import portal, rules
from bench.report import markdown, text_table
from bench.stats import Row, Section, fmt, percentile, ratio, row, summarize
from bench.workload import chat_per_rule, write_rules


def test_summarize_gives_min_median_max_and_skips_nan() -> None:
    """An even count takes the mean of the middle pair; a NaN run is left out."""
    summary = summarize([4.0, 1.0, math.nan, 3.0, 2.0])
    assert (summary.min, summary.median, summary.max, summary.runs) == (1.0, 2.5, 4.0, 4)


def test_summarize_refuses_nothing() -> None:
    """No values is a bug in the benchmark, not a figure of zero."""
    with pytest.raises(ValueError, match="no values"):
        summarize([math.nan])


def test_percentile_interpolates_between_ranks() -> None:
    """p50 of 1..4 lies between 2 and 3; the ends are the extremes."""
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile(values, 101)


def test_ratio_pairs_runs_and_marks_a_zero_denominator() -> None:
    """Run i is divided by run i; dividing by zero gives no ratio rather than a crash."""
    result = ratio([2.0, 3.0], [4.0, 0.0])
    assert result[0] == 0.5
    assert math.isnan(result[1])
    with pytest.raises(ValueError, match="paired"):
        ratio([1.0], [1.0, 2.0])


def test_fmt_keeps_integers_whole_and_small_numbers_readable() -> None:
    """Counts print exactly; fractions keep three significant figures."""
    assert fmt(5000.0) == "5,000"
    assert fmt(164.99999999999997) == "165"
    assert fmt(0.01234) == "0.0123"
    assert fmt(12.5) == "12.50"
    assert fmt(math.nan) == "—"


def test_a_row_without_values_has_no_summary() -> None:
    """A figure no run could produce (e.g. a ratio over zero) renders as a dash."""
    assert row("c", "m", [math.nan]).summary is None
    assert Row("c", "m", (1.0,)).summary is not None


def test_rules_benchmark_runs_at_tiny_sizes() -> None:
    """Every workload yields rows and a cost ratio; fixed matches stay fixed as rules grow."""
    section = rules.run_rules(
        sizes=(rules.HIT_RULES, 60),
        departments=40,
        people=20,
        evaluations=200,
        runs=1,
        time_cap=1.0,
    )
    matched = {r.case: r.values[0] for r in section.rows if r.metric == "matched rules/eval"}
    assert len(matched) == 6
    assert all(value >= 1.0 for value in matched.values())  # everyone matches a rule
    fixed = [v for case, v in matched.items() if case.startswith("departments, fixed")]
    assert fixed[0] == fixed[1]
    assert [r.metric for r in section.rows].count("cost ratio") == 3
    assert len(section.targets) == 2


def test_generated_tree_is_one_tree() -> None:
    """Every department reaches department 1, so a rule on the root covers everyone."""
    tree = rules.generated_tree(60)
    assert tree.roots() == (1,)
    assert all(tree.ancestors(d)[-1] == 1 for d in tree.ids)


def test_naive_time_follows_the_bucket_formula() -> None:
    """The first 50 requests are free, then each costs half a second."""
    assert portal.bucket_seconds(50) == 0.0
    assert portal.bucket_seconds(150) == 50.0


@pytest.mark.anyio
async def test_portal_benchmark_lands_every_hire(tmp_path: Path) -> None:
    """A tiny run through the real service: every hire ends up in every chat."""
    write_rules(tmp_path / "rules.yaml", chat_per_rule(2))
    outcome = await portal.run_autojoin(6, 2, tmp_path)
    assert outcome.landed == 12
    assert outcome.requests >= 1
    assert outcome.rejected == 0


def test_results_render_as_table_and_markdown() -> None:
    """Both renderings come from the same rows, with the targets listed."""
    section = Section("demo", "A demo", seconds=1.0)
    section.rows.append(row("case a", "events/s", [1.0, 2.0, 3.0], "1/s", "note | piped"))
    section.notes.append("measured by hand")
    text = text_table(section)
    assert "case a" in text
    assert "events/s" in text
    document = markdown([section], quick=True, command="python -m bench --quick")
    assert "| case a | events/s | 1 | 2 | 3 | 1/s | 3 | note \\| piped |" in document
    assert "- measured by hand" in document
    assert "| cores |" in document
