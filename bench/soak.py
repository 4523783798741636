"""Benchmark 7: hostile soak — thousands of hostile requests against a running `autojoin serve`.

One `autojoin serve` (front + worker, SQLite) with the portal and freshness checks on
(B24_MEMBER_ID, B24_PORTAL_DOMAIN, AUTOJOIN_MAX_EVENT_AGE) gets a paced stream in which one
request in ten is a valid ONUSERADD and the rest are hostile (`bench/hostile.py`). The same
schedule is first sent with only its valid events, so the valid events' latency with and
without the hostile traffic is compared side by side, in the same process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.config import Config
from bench.hostile import GIVE_UP, TRICKLE, Answer, Hostile, Request, exchange, request
from bench.procs import LOOPBACK, Server, child_env, python
from bench.stats import Row, Section, Target, percentile, ratio, row
from bench.workload import bodies, chat_per_rule, hires, served, settings_env, write_rules
from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company
from bot.sandbox.events import DOMAIN, MEMBER_ID
from bot.sandbox.state import User

NAME = "soak"
TITLE = "Hostile soak: a stream of hostile requests, valid events in between"
VALID_EVERY = 10  # one request in ten is a valid event
VALID = "valid ONUSERADD"
RATE = 400.0  # requests per second in the soak (valid ones included)
CONCURRENCY = 16  # connections in flight at most
MAX_AGE = 300  # AUTOJOIN_MAX_EVENT_AGE: a `ts` a day old is a replay
SETTLE = 1.0
WARMUP = 50  # valid hires sent (unmeasured) before the baseline: no cold start in it
MIB = 1024.0
BOUND_MIB = 2 * CONCURRENCY  # bodies of up to 1 MiB in flight, as chunks and joined


@dataclass(frozen=True, slots=True)
class Measured:
    answers: list[Answer]  # the soak's, hostile and valid
    baseline: list[Answer]  # the same valid events' schedule, alone
    seconds: float  # how long the soak's stream took
    server_cpu: float  # cores the server used meanwhile
    rss_kib: tuple[int, ...]  # at start, before the hostile stream, half-way, at the end
    hwm_kib: int
    healthy_after: bool
    tracebacks: int  # server log lines that show an unhandled exception

    def valid(self) -> list[float]:
        return [a.ms for a in self.answers if a.kind == VALID]

    def base(self) -> list[float]:
        return [a.ms for a in self.baseline]

    def refused_valid(self) -> int:
        """Valid events (either phase) not answered 200 `accepted`."""
        ours = [*self.baseline, *(a for a in self.answers if a.kind == VALID)]
        return sum(1 for a in ours if a.status != 200 or b'"accepted"' not in a.body)


def send_schedule(
    port: int, schedule: Sequence[tuple[float, Request]], limit: float
) -> list[Answer]:
    """Send request i at its offset from now, `CONCURRENCY` at a time, each on its own
    connection; stops at `limit` seconds (whatever is left is not sent)."""

    async def go() -> list[Answer]:
        answers: list[Answer] = []
        cursor = 0
        began = time.monotonic()

        async def connection() -> None:
            nonlocal cursor
            while cursor < len(schedule) and time.monotonic() - began < limit:
                at, req = schedule[cursor]
                cursor += 1
                await asyncio.sleep(max(0.0, began + at - time.monotonic()))
                answers.append(await exchange(LOOPBACK, port, req))

        await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
        return answers

    return asyncio.run(go())


Schedule = list[tuple[float, Request]]


def schedules(count: int, users: Sequence[User], rng: random.Random) -> tuple[Schedule, ...]:
    """Warm-up hires (all at once), the baseline (valid hires alone) and the soak's stream
    (every tenth request a valid hire, other IDs than the baseline's, at the same moments)."""
    step = 1.0 / RATE
    valid_n = count // VALID_EVERY
    alone = bodies(users[:valid_n])
    mixed = iter(bodies(users[valid_n : 2 * valid_n]))
    hostile = Hostile(rng, replays=alone)
    warmup = [(0.0, request(b)) for b in bodies(users[2 * valid_n :])]
    at = [((i + 1) * VALID_EVERY - 1) * step for i in range(valid_n)]  # as in the stream
    baseline = [(t, request(b)) for t, b in zip(at, alone, strict=True)]
    stream = [
        (i * step, replace(request(next(mixed)), kind=VALID))
        if i % VALID_EVERY == VALID_EVERY - 1
        else (i * step, hostile.make())
        for i in range(valid_n * VALID_EVERY)
    ]
    return warmup, baseline, stream


def measure(work: Path, rep: int, count: int) -> Measured:
    users = hires(2_000_000 + rep * 100_000, 2 * (count // VALID_EVERY) + WARMUP, 10, seed=rep)
    state = generated_company(users=20, departments=10, chats=1, seed=rep)
    for user in users:
        state.add_user(user)
    rules = write_rules(work / "rules.yaml", chat_per_rule(1))
    log = work / "serve.log"
    with served(FakePortal(state, time_scale=50.0)) as webhook:
        env = settings_env(
            webhook=webhook, rules=rules, database=f"sqlite:///{work / 'soak.db'}", rate=100.0
        )
        env |= {
            "B24_MEMBER_ID": MEMBER_ID,
            "B24_PORTAL_DOMAIN": DOMAIN,
            "AUTOJOIN_MAX_EVENT_AGE": str(MAX_AGE),
            "AUTOJOIN_RECONCILE_MINUTES": "0",
        }
        argv = python("-m", "bot", "serve", "--host", LOOPBACK, "--port", "{port}")
        with Server(argv, env=child_env(env), cwd=work, log=log) as server:
            warmup, alone, stream = schedules(count, users, random.Random(rep))
            half = len(stream) // 2
            second = [(at - stream[half][0], req) for at, req in stream[half:]]
            limit = len(stream) / RATE + 60.0
            time.sleep(SETTLE)
            rss = [server.rss_kib()]
            send_schedule(server.port, warmup, limit)
            baseline = send_schedule(server.port, alone, limit)
            rss.append(server.rss_kib())
            cpu, began = server.cpu(), time.perf_counter()
            answers = send_schedule(server.port, stream[:half], limit)
            rss.append(server.rss_kib())
            answers += send_schedule(server.port, second, limit)
            seconds, cpu = time.perf_counter() - began, server.cpu() - cpu
            time.sleep(SETTLE)
            healthy = _healthy(server.url)
            rss.append(server.rss_kib())
            hwm = server.hwm_kib()
    tracebacks = log.read_text(errors="replace").count("Traceback (most recent call last)")
    return Measured(answers, baseline, seconds, cpu / seconds, tuple(rss), hwm, healthy, tracebacks)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=5.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def status_rows(case: str, runs: list[Measured]) -> list[Row]:
    classes = ("2xx", "3xx", "4xx", "5xx", "reset", "timeout", "gave up")
    counts = [Counter(a.outcome for a in m.answers) for m in runs]
    rows = [
        row(case, "requests sent", [len(m.answers) for m in runs]),
        row(case, "valid events among them", [len(m.valid()) for m in runs]),
        row(case, "stream duration", [m.seconds for m in runs], "s", f"paced at {RATE:g}/s"),
    ]
    for name in classes:
        if name == "5xx" or any(c[name] for c in counts):
            note = "no answer" if name in {"reset", "timeout", "gave up"} else ""
            rows.append(row(case, f"answers {name}", [c[name] for c in counts], note=note))
    return rows


def figure_rows(case: str, runs: list[Measured]) -> list[Row]:
    p50 = [percentile(m.valid(), 50) for m in runs]
    p99 = [percentile(m.valid(), 99) for m in runs]
    base50 = [percentile(m.base(), 50) for m in runs]
    base99 = [percentile(m.base(), 99) for m in runs]
    return [
        row(case, "valid events not accepted", [m.refused_valid() for m in runs]),
        row(case, "valid latency p50, in the soak", p50, "ms"),
        row(case, "valid latency p50, alone", base50, "ms"),
        row(case, "valid latency p99, in the soak", p99, "ms"),
        row(case, "valid latency p99, alone", base99, "ms"),
        row(case, "p50 soak/alone", ratio(p50, base50), "×"),
        row(case, "p99 soak/alone", ratio(p99, base99), "×"),
        row(case, "server CPU during the soak", [m.server_cpu for m in runs], "cores"),
        row(case, "RSS at start", [m.rss_kib[0] / MIB for m in runs], "MiB"),
        row(case, "RSS before the soak", [m.rss_kib[1] / MIB for m in runs], "MiB"),
        row(case, "RSS half-way through", [m.rss_kib[2] / MIB for m in runs], "MiB"),
        row(case, "RSS at the end", [m.rss_kib[3] / MIB for m in runs], "MiB"),
        row(
            case,
            "RSS growth, second half",
            [(m.rss_kib[3] - m.rss_kib[2]) / MIB for m in runs],
            "MiB",
            "≈ 0 when memory is bounded",
        ),
        row(case, "peak RSS (VmHWM)", [m.hwm_kib / MIB for m in runs], "MiB"),
        row(case, "healthy after (1 = yes)", [int(m.healthy_after) for m in runs]),
        row(case, "tracebacks in the server log", [m.tracebacks for m in runs]),
    ]


def by_kind(m: Measured) -> str:
    """What each kind got, in one line per kind (the last run)."""
    kinds: dict[str, Counter[str]] = {}
    for a in m.answers:
        kinds.setdefault(a.kind, Counter())[str(a.status or a.outcome)] += 1
    return "; ".join(
        f"{kind}: " + ", ".join(f"{n}× {s}" for s, n in sorted(seen.items()))
        for kind, seen in sorted(kinds.items())
    )


def run(config: Config) -> Section:
    section = Section(NAME, TITLE)
    count = config.pick(300, 3_000)
    runs: list[Measured] = []
    for rep in config.repetitions(section.notes):
        runs.append(measure(config.fresh_dir(f"soak-{rep}"), rep, count))
    case = f"{count:,} requests, 1 in {VALID_EVERY} valid"
    section.rows += status_rows(case, runs) + figure_rows(case, runs)
    fives = max(sum(1 for a in m.answers if a.outcome == "5xx") for m in runs)
    crashes = max(m.tracebacks for m in runs)
    growth = max(m.hwm_kib - m.rss_kib[0] for m in runs) / MIB
    section.targets += [
        Target("soak 5xx", "no 5xx answer", fives == 0, f"worst run {fives}"),
        Target(
            "soak errors",
            "no unhandled exception in the server log",
            crashes == 0,
            f"worst run {crashes}",
        ),
        Target(
            "soak memory",
            f"peak − start ≤ {BOUND_MIB:g} MiB",
            growth <= BOUND_MIB,
            f"worst {growth:.1f} MiB",
        ),
    ]
    section.notes += [
        f"One `autojoin serve` (front + worker, SQLite) with B24_MEMBER_ID, B24_PORTAL_DOMAIN "
        f"and AUTOJOIN_MAX_EVENT_AGE={MAX_AGE} set; its worker delivers the valid events to a "
        "fake portal time-scaled ×50 in the benchmark process.",
        f"Each request goes on its own connection (as a portal's delivery would), paced at "
        f"{RATE:g}/s with at most {CONCURRENCY} in flight; every {VALID_EVERY}th is a valid "
        "ONUSERADD of a new hire. 'Alone' sends the same number of valid hires (other IDs) "
        "at the same moments without the hostile requests, just before, to the same process "
        f"(after {WARMUP} unmeasured warm-up hires). The stream is sent in two halves, RSS "
        "read in between.",
        "Hostile kinds, picked at random (seeded): " + "; ".join(_kind_names()) + ". A slow "
        f"body arrives in {TRICKLE[0]} pieces {TRICKLE[1] * 1000:.0f} ms apart; a partial body "
        f"declares its length, sends half and hangs up after {GIVE_UP} s ('gave up').",
        f"Memory bound: {CONCURRENCY} bodies of up to 1 MiB in flight, each held as chunks and "
        f"once joined: {BOUND_MIB:g} MiB. RSS is VmRSS and the peak VmHWM of the server.",
        "'reset': the server answered 413 as soon as the body passed 1 MiB (or at once, for a "
        "declared 2 MiB) and closed while the client was still sending; the reset can destroy "
        "the 413 before the client reads it. 'gave up': partial bodies, no answer expected.",
        "Tracebacks: each partial body leaves one `starlette.requests.ClientDisconnect` "
        "traceback at ERROR in the server log (`read_limited` in bot/web.py does not catch "
        "it). Nobody receives a 5xx, but a hostile client can fill the error log.",
        f"Each p99 is the tail of {count // VALID_EVERY:,} valid events (its few slowest decide "
        "it), so the p99 ratio moves from run to run; p50 is the steadier comparison. A busy "
        "server may answer sooner than one idling between requests, so a ratio can fall "
        "below 1.",
        "What each kind got (last run): " + (by_kind(runs[-1]) if runs else "—") + ".",
    ]
    return section


def _kind_names() -> list[str]:
    return list(Hostile(random.Random(0), replays=[b""]).kinds)
