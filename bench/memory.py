"""Benchmark 5: memory of a running `autojoin serve` — idle, after a burst of events, drained.

RSS is VmRSS from /proc/<pid>/status of the server process (HTTP front and worker in one
process, as deployed); the peak is VmHWM. The fake portal is time-scaled and autojoin's
bucket scaled with it (`B24_RATE` × the same factor, same burst), so the worker drains the
queue in seconds instead of hours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.config import Config
from bench.load import run_load
from bench.procs import LOOPBACK, Server, child_env, python
from bench.stats import Section, row
from bench.workload import bodies, chat_per_rule, served, settings_env, write_rules
from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company
from bot.store import open_store

NAME = "memory"
TITLE = "Memory of autojoin serve"
TIME_SCALE = 50.0
DRAIN_LIMIT = 300.0
SETTLE = 1.0  # seconds to let start-up (or the last answer) settle before reading RSS


@dataclass(frozen=True, slots=True)
class Measured:
    idle_kib: int
    loaded_kib: int
    drained_kib: int
    peak_kib: int
    drain_seconds: float
    requests: int


def pending(database: str) -> int:
    """Jobs not yet done or dead, read through the store like `autojoin jobs` would."""
    store = open_store(database, migrate=False)
    try:
        counts = store.counts()
    finally:
        store.close()
    return counts.get("pending", 0) + counts.get("running", 0)


def measure_once(
    server: Server, database: str, events: list[bytes], portal: FakePortal
) -> Measured:
    with server:
        time.sleep(SETTLE)
        idle = server.rss_kib()
        load = run_load(
            server.url + "/events", events, concurrency=32, expect=b'"accepted"', time_limit=300
        )
        if load.failures or load.sent < len(events):
            raise RuntimeError(f"{load.sent} sent, {load.failures} failed: {load.first_failure}")
        loaded = server.rss_kib()
        began = time.monotonic()
        while pending(database) and time.monotonic() - began < DRAIN_LIMIT:
            time.sleep(0.2)
        drain = time.monotonic() - began
        left = pending(database)
        if left:
            raise RuntimeError(f"{left} jobs still pending after {DRAIN_LIMIT:.0f} s")
        time.sleep(SETTLE)
        return Measured(
            idle, loaded, server.rss_kib(), server.hwm_kib(), drain, portal.http_requests
        )


def run(config: Config) -> Section:
    section = Section(NAME, TITLE)
    count = config.pick(1_000, 10_000)
    work = config.workdir
    rules = write_rules(work / "rules.yaml", chat_per_rule(1))
    measured: list[Measured] = []
    for rep in config.repetitions(section.notes):
        state = generated_company(count + 1, 50, 1, seed=rep)
        for user in state.users.values():
            user.active = True
        portal = FakePortal(state, time_scale=TIME_SCALE)
        events = bodies([state.users[uid] for uid in range(2, count + 2)])
        database = f"sqlite:///{work / f'memory-{rep}.db'}"
        with served(portal) as webhook:
            env = settings_env(
                webhook=webhook, rules=rules, database=database, rate=2.0 * TIME_SCALE
            )
            argv = python("-m", "bot", "serve", "--host", LOOPBACK, "--port", "{port}")
            server = Server(argv, env=child_env(env), cwd=work, log=work / "serve.log")
            measured.append(measure_once(server, database, events, portal))
    case = f"serve + worker, {count:,} events"
    mib = 1024.0
    section.rows += [
        row(case, "RSS idle", [m.idle_kib / mib for m in measured], "MiB"),
        row(case, f"RSS after {count:,} events", [m.loaded_kib / mib for m in measured], "MiB"),
        row(case, "RSS after the queue drained", [m.drained_kib / mib for m in measured], "MiB"),
        row(case, "peak RSS (VmHWM)", [m.peak_kib / mib for m in measured], "MiB"),
        row(
            case,
            "growth idle → drained",
            [(m.drained_kib - m.idle_kib) / mib for m in measured],
            "MiB",
        ),
        row(case, "drain after last event", [m.drain_seconds for m in measured], "s"),
        row(case, "portal requests", [m.requests for m in measured]),
    ]
    section.notes += [
        f"One `autojoin serve` (HTTP front + worker) per run on SQLite; {count:,} real ONUSERADD "
        "bodies posted at concurrency 32, each user added to one chat. RSS read after a "
        f"{SETTLE:.0f} s settle: idle, right after the last answer, and once no job is pending.",
        f"Fake portal time-scaled ×{TIME_SCALE:.0f} (B24_RATE={2 * TIME_SCALE:.0f}, burst 50); "
        "it runs in the benchmark process, so none of its memory is in these figures.",
    ]
    return section
