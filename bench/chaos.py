"""Benchmark 8: chaos soak — kill -9 through the load, two replicas, a faulty portal (issue #16).

Per seed: two `autojoin serve` replicas on one fresh PostgreSQL schema; the fake portal at
the cloud's real limit (2 requests/s, burst 50) failing 10% of requests with a 500; hires
and bot requests spread over the load, through both intakes: pushed (some hires delivered
twice, once to each replica) and pulled (hires only the hire poll finds, requests the
Chatbots 2.0 bot fetches); a random replica killed with SIGKILL every 15-25 s and started
again 1-3 s later, the last kill just after the last event. Then it waits (bounded) for
everything to land and reports lost, duplicated and late work per seed, over all events and
per intake. The stage is `bench/chaosrun.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bench.chaosmeasure import IntakeFigures, SeedResult
from bench.chaosnotes import notes
from bench.chaosplan import FULL, INTAKES, PULLED, PUSHED, QUICK
from bench.chaosrun import FAULT_RATE, run_seed
from bench.config import Config
from bench.procs import postgres_problem, postgres_schema
from bench.stats import Row, Section, Target, fmt, percentile, row

INTAKE_NOTES = {
    PUSHED: "POSTed to /events; ack = the first 2xx",
    PULLED: "fetched (bot) or polled (hires); ack = committed by autojoin",
}
NAME = "chaos"
TITLE = "Chaos soak: two replicas on PostgreSQL, kill -9 through the load, a faulty portal"
FULL_SEEDS = (1, 2, 3, 4, 5)
QUICK_SEEDS = (1,)
MAX_SECONDS = 45.0  # the bound on ack → member, for every membership
P95_SECONDS = 10.0


def _p(values: Sequence[float], q: float) -> float:
    return percentile(values, q) if values else math.nan


def metrics() -> list[tuple[str, Callable[[SeedResult], float], str, str]]:
    """(metric, value of one seed, unit, note) in table order."""
    return [
        ("events acknowledged", lambda r: r.events - r.never_acked, "", "hires + bot requests"),
        ("events never acknowledged", lambda r: r.never_acked, "", ""),
        ("lost", lambda r: r.lost, "", "acknowledged; a membership or the answer never came"),
        ("memberships expected", lambda r: r.pairs, "", ""),
        ("effective adds twice (portal)", lambda r: r.added_twice, "", "made a member twice"),
        ("pairs audited `added` twice", lambda r: r.audit_twice, "", "the audit's view"),
        ("members not audited `added`", lambda r: r.audit_unadded, "", "retried as already in"),
        ("add calls for a member already in", lambda r: r.repeat_add_calls, "", "no-op retries"),
        ("wrong history setting", lambda r: r.wrong_history, "", ""),
        ("ack → member p50", lambda r: _p(r.latencies, 50), "s", ""),
        ("ack → member p95", lambda r: _p(r.latencies, 95), "s", ""),
        ("ack → member max", lambda r: max(r.latencies, default=math.nan), "s", ""),
        (
            f"memberships later than {P95_SECONDS:g} s",
            lambda r: sum(1 for v in r.latencies if v > P95_SECONDS),
            "",
            "",
        ),
        (
            f"memberships later than {MAX_SECONDS:g} s",
            lambda r: sum(1 for v in r.latencies if v > MAX_SECONDS),
            "",
            "",
        ),
        ("bot requests answered", lambda r: r.answered, "", "by a reply other than 'queued'"),
        ("bot requests never answered", lambda r: r.unanswered, "", "counted in lost"),
        ("duplicate bot replies", lambda r: r.duplicate_replies, "", "same reply sent again"),
        ("bot requests answered twice", lambda r: r.answered_twice, "", ""),
        ("'queued' notices", lambda r: r.queued_notices, "", "adds not done 10 s after"),
        ("ack → reply p50", lambda r: _p(r.reply_latencies, 50), "s", ""),
        ("ack → reply max", lambda r: max(r.reply_latencies, default=math.nan), "s", ""),
        (
            f"replies later than {MAX_SECONDS:g} s",
            lambda r: sum(1 for v in r.reply_latencies if v > MAX_SECONDS),
            "",
            "",
        ),
        ("QUERY_LIMIT_EXCEEDED", lambda r: r.rejected, "", ""),
        ("500s injected", lambda r: r.faults, "", f"{FAULT_RATE:.0%} of portal requests"),
        ("portal requests", lambda r: r.requests, "", ""),
        ("kills (kill -9)", lambda r: len(r.kills), "", ""),
        ("last kill after the last event", lambda r: r.last_kill_after_load, "s", ""),
        (
            "killed replica healthy again, max",
            lambda r: max((k.back_after for k in r.kills), default=math.nan),
            "s",
            "restart delay + start-up",
        ),
        ("settled after the last event", lambda r: r.settled_after, "s", "— = not settled"),
        ("dead jobs", lambda r: r.dead_jobs, "", ""),
        ("seed wall time", lambda r: r.seconds, "s", ""),
        *[m for intake in INTAKES for m in intake_metrics(intake)],
    ]


def intake_metrics(intake: str) -> list[tuple[str, Callable[[SeedResult], float], str, str]]:
    """One intake's share of the load: the same lost and latency figures, for it alone."""

    def share(r: SeedResult) -> IntakeFigures:
        return r.by_intake.get(intake, IntakeFigures())

    figures: list[tuple[str, Callable[[SeedResult], float], str, str]] = [
        (f"{intake}: events", lambda r: share(r).events, "", INTAKE_NOTES[intake]),
        (f"{intake}: lost", lambda r: share(r).lost, "", ""),
        (f"{intake}: ack → member p95", lambda r: _p(share(r).latencies, 95), "s", ""),
        (
            f"{intake}: ack → member max",
            lambda r: max(share(r).latencies, default=math.nan),
            "s",
            "",
        ),
    ]
    if intake == PULLED:
        figures += [
            (
                f"{intake}: published → member p95",
                lambda r: _p(share(r).from_published, 95),
                "s",
                "from the moment it appeared at the portal: adds the wait for the next poll",
            ),
            (
                f"{intake}: published → member max",
                lambda r: max(share(r).from_published, default=math.nan),
                "s",
                "",
            ),
        ]
    return figures


def per_seed(results: Sequence[SeedResult], values: Sequence[float]) -> str:
    return "per seed " + ", ".join(
        f"{r.seed}: {fmt(v)}" for r, v in zip(results, values, strict=True)
    )


def rows(case: str, results: Sequence[SeedResult]) -> list[Row]:
    found: list[Row] = []
    for metric, value, unit, note in metrics():
        values = [float(value(r)) for r in results]
        found.append(
            row(
                case,
                metric,
                values,
                unit,
                "; ".join(filter(None, [note, per_seed(results, values)])),
            )
        )
    return found


def targets(results: Sequence[SeedResult]) -> list[Target]:
    def each(value: Callable[[SeedResult], float]) -> str:
        return per_seed(results, [float(value(r)) for r in results])

    worst_max = max((max(r.latencies, default=math.inf) for r in results), default=math.inf)
    worst_p95 = max((_p(r.latencies, 95) for r in results), default=math.inf)
    return [
        Target(
            "chaos lost",
            "0 lost, every event acknowledged",
            all(r.lost == 0 and r.never_acked == 0 for r in results),
            each(lambda r: r.lost + r.never_acked),
        ),
        Target(
            "chaos adds twice",
            "0 effective adds twice (portal and audit)",
            all(r.added_twice == 0 and r.audit_twice == 0 for r in results),
            each(lambda r: r.added_twice + r.audit_twice),
        ),
        Target(
            "chaos latency max",
            f"ack → member ≤ {MAX_SECONDS:g} s for every membership",
            worst_max <= MAX_SECONDS,
            each(lambda r: max(r.latencies, default=math.nan)) + " s",
        ),
        Target(
            "chaos latency p95",
            f"ack → member p95 < {P95_SECONDS:g} s",
            worst_p95 < P95_SECONDS,
            each(lambda r: _p(r.latencies, 95)) + " s",
        ),
        Target(
            "chaos replies",
            "0 duplicate bot replies",
            all(r.duplicate_replies == 0 for r in results),
            each(lambda r: r.duplicate_replies),
        ),
        Target(
            "chaos limit",
            "0 QUERY_LIMIT_EXCEEDED",
            all(r.rejected == 0 for r in results),
            each(lambda r: r.rejected),
        ),
    ]


def run(config: Config) -> Section:
    section = Section(NAME, TITLE)
    problem = postgres_problem(config.postgres)
    if problem:
        section.notes.append(f"Not run: PostgreSQL unreachable ({problem}).")
        section.targets.append(Target("chaos", "ran", None, "PostgreSQL unreachable"))
        return section
    scale = (QUICK if config.quick else FULL).scaled(config.scale)
    results: list[SeedResult] = []
    for seed in config.seeds_or(QUICK_SEEDS, FULL_SEEDS):
        with postgres_schema(config.postgres, "bench_chaos") as database:
            result = run_seed(scale, seed, config.fresh_dir(f"seed-{seed}"), database)
        results.append(result)
        print(f"   seed {seed}: {brief(result)}", flush=True)
    case = (
        f"{scale.hires:,} hires ({scale.twice} twice, {scale.polled_hires} polled) + "
        f"{scale.asks} bot requests ({scale.pulled_asks} fetched) over {scale.load_seconds:g} s"
    )
    section.rows += rows(case, results)
    section.targets += targets(results)
    section.notes += notes(scale, [r.seed for r in results], config.quick)
    return section


def brief(r: SeedResult) -> str:
    return (
        f"lost {r.lost}, adds twice {r.added_twice}/{r.audit_twice}, "
        f"ack→member p50 {fmt(_p(r.latencies, 50))} p95 {fmt(_p(r.latencies, 95))} "
        f"max {fmt(max(r.latencies, default=math.nan))} s, duplicate replies "
        f"{r.duplicate_replies}, QLE {r.rejected}, kills {len(r.kills)}, {r.seconds:.0f} s"
    )
