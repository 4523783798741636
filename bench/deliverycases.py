"""The delivery scenarios: one process, two processes, a process stopped or killed mid-burst.

Each scenario builds a fresh stage (portal, hires, database), runs real `autojoin serve`
processes against it, and returns an `Outcome`: what the portal saw, what landed, what the
audit trail says. Every process is stopped in a `finally`; every schema is dropped.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import deliverywork as dw
from bench.load import Load
from bench.procs import postgres_schema, wait_until
from bench.workload import served

IN_FLIGHT = 15.0  # seconds to wait for A's worker to hold claims at the portal


@dataclass(slots=True)
class Outcome:
    acks_ms: list[float]
    requests: int
    rejected: int
    longest_rejected_run: int
    max_level: float
    landed: int
    land_seconds: float  # first event posted → every pair a member, no job left (real time)
    methods: str  # requests by method, for the notes
    audit: dw.Audit | None = None
    per_process: list[float] = field(default_factory=list)  # REST calls, from /metrics
    held_at_signal: int = -1  # jobs the signalled process held (claimed, in flight)
    exit_seconds: float = float("nan")


def outcome(stage: dw.Stage, loads: list[Load], began: float, landed_at: float) -> Outcome:
    with stage.portal.lock:
        counters = stage.portal.counters
        calls = [c for c in stage.portal.state.calls if not c.batch]
        requests, rejected = counters.http_requests, counters.rejected_rate_limit
        level = counters.max_bucket_level
    longest = streak = 0
    for call in calls:
        streak = streak + 1 if call.error == "QUERY_LIMIT_EXCEEDED" else 0
        longest = max(longest, streak)
    by_method = Counter(c.method for c in calls)
    methods = ", ".join(f"{m} {n}" for m, n in sorted(by_method.items()))
    acks = [ms for load in loads for ms in load.latencies_ms]
    return Outcome(
        acks, requests, rejected, longest, level, stage.landed(), landed_at - began, methods
    )


def single(n: int, k: int, work: Path, seed: int) -> Outcome:
    """One `autojoin serve` (front + worker) on SQLite: a burst of N hires into K chats."""
    stage = dw.make_stage(n, k, work, seed)
    database = f"sqlite:///{work / 'delivery.db'}"
    with (
        served(stage.portal) as webhook,
        dw.server(dw.serve_env(webhook, stage.rules, database), work, "serve") as one,
    ):
        began = time.perf_counter()
        loads = dw.post_split([(one.url, stage.bodies())])
        landed_at = dw.wait_landed(stage, database)
    return outcome(stage, loads, began, landed_at)


def pair(n: int, k: int, work: Path, seed: int, dsn: str, seconds: float) -> Outcome:
    """Two `autojoin serve` processes on one fresh PostgreSQL schema, events alternating,
    trickled over `seconds` at the portal's real rate: the shared bucket is what binds."""
    stage = dw.make_stage(n, k, work, seed, time_scale=1.0)
    events = stage.bodies()
    with postgres_schema(dsn, "bench_delivery") as database, served(stage.portal) as webhook:
        env = dw.serve_env(webhook, stage.rules, database, time_scale=1.0)
        with dw.server(env, work, "serve-a") as a, dw.server(env, work, "serve-b") as b:
            began = time.perf_counter()
            halves = [(a.url, events[0::2]), (b.url, events[1::2])]
            loads = dw.post_split(halves, interval=2 * seconds / max(1, n))
            landed_at = dw.wait_landed(stage, database)
            per_process = [dw.rest_calls(a), dw.rest_calls(b)]
        result = outcome(stage, loads, began, landed_at)
        result.audit = dw.audit(stage, database)
    result.per_process = per_process
    return result


def restart(n: int, k: int, work: Path, seed: int, dsn: str, signum: signal.Signals) -> Outcome:
    """A takes the first half of a burst while the portal holds requests (as a slow portal
    would), so A's claims are in flight; B starts; A gets `signum` and is started again once
    B has taken the second half and the portal lets go. Both deliver the rest."""
    stage = dw.make_stage(n, k, work, seed)
    events = stage.bodies()
    half = len(events) // 2
    with postgres_schema(dsn, "bench_restart") as database, served(stage.portal) as webhook:
        env = dw.serve_env(webhook, stage.rules, database)
        a, b = dw.server(env, work, "serve-a"), dw.server(env, work, "serve-b")
        again = dw.server(env, work, "serve-a-again")
        try:
            a.start()
            stage.portal.hold()
            began = time.perf_counter()
            loads = dw.post_split([(a.url, events[:half])])

            def in_flight() -> Counter[str] | None:
                parked = stage.portal.counters.held_now > 0
                return (dw.claims(database) or None) if parked else None

            owners = wait_until(in_flight, timeout=IN_FLIGHT, what="A's claims at the portal")
            b.start()
            stopped = time.perf_counter()
            a.stop(signum)  # waits for the exit while the portal still holds A's request
            exit_seconds = time.perf_counter() - stopped
            loads += dw.post_split([(b.url, events[half:])])
            stage.portal.release()
            again.start()
            landed_at = dw.wait_landed(stage, database)
        finally:
            stage.portal.release()
            for process in (a, again, b):
                process.stop()
        result = outcome(stage, loads, began, landed_at)
        result.audit = dw.audit(stage, database)
    result.held_at_signal = sum(owners.values())
    result.exit_seconds = exit_seconds
    return result
