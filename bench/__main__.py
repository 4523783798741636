"""`python -m bench [--quick] [--out bench/results.md] [--only NAME] [--seeds 1,2] [--scale F]`.

Full mode repeats every figure (>= 3 runs) and writes results.md; quick mode runs each
benchmark once at small sizes as a CI smoke test (no thresholds: it fails only if a
benchmark crashes). Targets are reported, never enforced: the machine is shared.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.config import Config
from bench.report import markdown, quick_summary, text_table, verdict
from bench.stats import Section

# modules bench/<name>.py
BENCHMARKS = ("ack", "portal", "rules", "plan", "memory", "delivery", "soak", "pull", "chaos")
DEFAULT_OUT = Path("bench/results.md")
RUNS = {"quick": 1, "full": 3}
BUDGET = {"quick": 25.0, "full": 1200.0}  # seconds per benchmark before it stops repeating


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run autojoin's benchmarks; every figure is min/median/max over its runs.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (CI smoke)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"write results.md here (default: {DEFAULT_OUT} for a full run of everything; "
        "--quick and --only write no file unless given --out)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--runs", type=int, default=None, help="repetitions per figure")
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=(),
        help="comma-separated seeds, e.g. 1,2,3 (chaos; default 1-5, quick 1)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="size factor on the issue's load (chaos)"
    )
    return parser.parse_args(argv)


def seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"not a comma-separated list of integers: {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def run_one(name: str, config: Config) -> Section:
    """Run one benchmark; a crash (even on import) becomes the section's error, not the end."""
    started = time.perf_counter()
    title = name
    try:
        module = importlib.import_module(f"bench.{name}")
        title = str(module.TITLE)
        runner: Callable[[Config], Section] = module.run
        section = runner(config)
    except Exception:
        section = Section(name, title, error=traceback.format_exc())
    section.seconds = time.perf_counter() - started
    return section


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    runs = args.runs if args.runs is not None else RUNS[mode]
    if runs < 1:
        raise SystemExit("--runs must be at least 1")
    if args.scale <= 0:
        raise SystemExit("--scale must be positive")
    partial = args.quick or bool(args.only)  # must not overwrite the full results
    out: Path | None = args.out if args.out is not None or partial else DEFAULT_OUT
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    sections: list[Section] = []
    for name in names:
        print(f"-- {name} …", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"autojoin-bench-{name}-") as work:
            config = Config(
                args.quick, Path(work), runs, BUDGET[mode], seeds=args.seeds, scale=args.scale
            )
            section = run_one(name, config)
        sections.append(section)
        if not args.quick:  # a smoke run prints one summary at the end instead
            print(text_table(section), flush=True)
        if section.error:
            print(section.error, file=sys.stderr, flush=True)
    command = shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])])
    if args.quick:
        print("\n".join(quick_summary(sections)))
    else:
        print("\n== targets")
        for section in sections:
            for target in section.targets:
                print(f"  {target.name}: {target.goal}: {verdict(target)} ({target.detail})")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(sections, quick=args.quick, command=command))
        print(f"\nwrote {out}")
    crashed = [s.name for s in sections if s.error]
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
