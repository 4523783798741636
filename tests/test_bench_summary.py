"""`bench --quick` ends in a short smoke summary: what ran, what each ratio compares, no
verdicts on targets and no rows that only mean "not applicable"."""

from __future__ import annotations

import math

from bench.report import LEGEND, quick_summary
from bench.stats import Section, Target, row


def sections() -> list[Section]:
    ack = Section("ack", "Acknowledgement path", seconds=4.2)
    ack.rows += [
        row("ceiling: Starlette", "events/s", [6100.0]),
        row("autojoin: SQLite", "autojoin/ceiling", [0.498], "×"),
        row("N=100 K=1", "time: autojoin/naive", [0.0], "×"),  # zero: not applicable
        row("N=100 K=1", "time: autojoin/limit", [math.nan], "×"),  # no ratio at all
    ]
    ack.targets.append(Target("ack SQLite", "autojoin/ceiling ≥ 0.5", False, "median 0.50"))
    memory = Section("memory", "Memory of autojoin serve", seconds=3.0)
    memory.rows.append(row("idle", "RSS", [42.0], "MiB"))
    broken = Section("soak", "Hostile soak", seconds=1.0, error="Traceback …\nValueError: x")
    return [ack, memory, broken]


def test_the_summary_is_short_and_defines_each_reference_once() -> None:
    lines = quick_summary(sections())
    text = "\n".join(lines)
    assert len(lines) < 20
    assert "smoke run" in lines[0]
    for name, _ in LEGEND:
        assert sum(line.strip().startswith(f"{name} ") for line in lines) == 1, name
    assert "autojoin: SQLite: autojoin/ceiling = 0.498×" in text


def test_no_verdicts_and_no_rows_of_zeros_or_dashes() -> None:
    text = "\n".join(quick_summary(sections()))
    assert "NOT met" not in text
    assert " met" not in text
    assert "time: autojoin/naive" not in text
    assert "time: autojoin/limit" not in text
    assert "memory    ran in 3 s: Memory of autojoin serve" in text
    assert "1 figures; no ratio at these sizes" in text
    assert "soak      CRASHED in 1 s" in text


def test_a_benchmark_with_many_ratios_is_cut_short() -> None:
    portal = Section("portal", "Portal efficiency", seconds=1.0)
    portal.rows += [row(f"N=100 K={k}", "requests: autojoin/limit", [2.0], "×") for k in range(9)]
    lines = quick_summary([portal])
    assert sum("requests: autojoin/limit" in line for line in lines) == 6
    assert lines[-1].strip() == "… and 3 more ratios"
