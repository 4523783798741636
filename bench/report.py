"""Rendering: the console table and bench/results.md, both built from the same rows."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.procs import REPO
from bench.stats import Row, Section, Target, fmt

HEADER = ("case", "metric", "min", "median", "max", "unit", "runs", "note")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _commit() -> str:
    """The checked-out commit, and whether the tree had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def machine() -> list[tuple[str, str]]:
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cores", f"{os.cpu_count()} ({_cpu_model()})"),
        ("memory", _memory()),
        ("python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("platform", platform.platform()),
        ("commit", _commit()),
    ]


def _cells(r: Row) -> tuple[str, ...]:
    s = r.summary
    if s is None:
        return (r.case, r.metric, "—", "—", "—", r.unit, "0", r.note)
    return (r.case, r.metric, fmt(s.min), fmt(s.median), fmt(s.max), r.unit, str(s.runs), r.note)


def verdict(target: Target) -> str:
    return {True: "met", False: "NOT met", None: "not judged"}[target.met]


def text_table(section: Section) -> str:
    """Fixed-width columns for the terminal."""
    lines = [f"== {section.name}: {section.title} ({section.seconds:.0f} s)"]
    if section.error:
        lines.append(f"   CRASHED: {section.error.strip().splitlines()[-1]}")
    rows = [HEADER, *(_cells(r) for r in section.rows)]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(HEADER))]
    right = {2, 3, 4, 6}
    for cells in rows:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  " + "  ".join(parts).rstrip())
    for target in section.targets:
        lines.append(f"  target {target.name}: {target.goal}: {verdict(target)} ({target.detail})")
    return "\n".join(lines)


# What each ratio's reference is, said once for the whole quick summary.
LEGEND = (
    (
        "ceiling",
        "a bare Starlette app that only parses the body: the fastest acknowledgement "
        "this machine allows",
    ),
    ("limit", "the fewest requests, or the least portal time, that could land the same adds"),
    ("naive", "one REST call per user per chat"),
    ("alone", "the same valid events with no hostile traffic around them"),
    ("cost ratio", "the cost of an evaluation with 10,000 rules over its cost with 10"),
)
MAX_RATIOS = 6  # per benchmark in the quick summary; the full table is in bench/results.md


def quick_summary(sections: Sequence[Section]) -> list[str]:
    """`--quick` is a smoke run: what ran and the ratios it saw, not a verdict.

    At small sizes and one run a target may miss by noise alone, so no target is judged here;
    a ratio that is 0 or could not be taken ("not applicable") is left out.
    """
    lines = [
        "== bench --quick: a smoke run (small sizes, one run each). It fails only if a "
        "benchmark crashes;",
        "   targets are judged by the full run (`python -m bench`, which writes bench/results.md).",
        "   Each ratio (×) is autojoin over a reference measured in the same run:",
    ]
    width = max(len(name) for name, _ in LEGEND)
    lines += [f"     {name:<{width}}  {meaning}" for name, meaning in LEGEND]
    for section in sections:
        state = "CRASHED" if section.error else "ran"
        lines.append(f"{section.name:<9} {state} in {section.seconds:.0f} s: {section.title}")
        ratios = [
            r
            for r in section.rows
            if r.unit == "×" and r.summary is not None and r.summary.max != 0
        ]
        for r in ratios[:MAX_RATIOS]:
            assert r.summary is not None
            lines.append(f"            {r.case}: {r.metric} = {fmt(r.summary.median)}×")
        if len(ratios) > MAX_RATIOS:
            lines.append(f"            … and {len(ratios) - MAX_RATIOS} more ratios")
        if not ratios and not section.error:
            lines.append(f"            {len(section.rows)} figures; no ratio at these sizes")
    return lines


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(sections: Sequence[Section], *, quick: bool, command: str) -> str:
    out = [
        "# autojoin benchmarks",
        "",
        f"Generated by `{command}`{' (quick mode: small sizes, one run)' if quick else ''}. "
        "Every figure is min / median / max over its runs; ratios are taken run by run "
        "between measurements made side by side. Do not edit by hand: rerun the command.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {_md_escape(v)} |" for k, v in machine()),
        "",
    ]
    targets = [t for s in sections for t in s.targets]
    if targets:
        out += ["## Targets", "", "| target | goal | result | detail |", "|---|---|---|---|"]
        out += [
            f"| {t.name} | {_md_escape(t.goal)} | {verdict(t)} | {_md_escape(t.detail)} |"
            for t in targets
        ]
        out.append("")
    for section in sections:
        out += [f"## {section.name}: {section.title}", ""]
        if section.error:
            out += ["**Crashed:**", "", "```", section.error.strip()[-3000:], "```", ""]
        if section.rows:
            out.append("| " + " | ".join(HEADER) + " |")
            out.append(
                "|"
                + "|".join("---:" if i in {2, 3, 4, 6} else "---" for i in range(len(HEADER)))
                + "|"
            )
            out += [
                "| " + " | ".join(_md_escape(c) for c in _cells(r)) + " |" for r in section.rows
            ]
            out.append("")
        out += [f"- {note}" for note in section.notes]
        out += ["", f"_Took {section.seconds:.0f} s._", ""]
    return "\n".join(out).rstrip() + "\n"
