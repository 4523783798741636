"""Benchmark: the pull intakes (Chatbots 2.0 fetch mode and the hire poll).

1. A v2 message to membership in fetch mode: a person writes to the bot at a random moment,
   autojoin fetches it on its next poll, commits it, the worker adds them. Latency from the
   message to the add, p50 and p99, reported against the poll interval (the expected wait for
   the next poll is half of it). Real time, in process: the fake portal over ASGI, the real
   service loops (`Services.running`), SQLite.
2. Portal requests per idle hour for both pollers, in simulated time (a FakeClock): nothing
   happens on the portal, the pollers run as their loops would, every request is counted.
   The share is of the standard plan's budget, 2 requests a second = 172,800 a day
   (reference §7.1); the share of one hour at 2/s is shown too.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

import handlers
from bench.config import Config
from bench.stats import Section, Target, percentile, row
from bot.chatbot.registration import V2Setup, register_v2
from bot.sandbox import FakePortal
from bot.sandbox.company import MARKETING
from bot.wiring import build_services
from tests.fakes import FakeClock
from tests.harness import make_settings, open_harness

NAME = "pull"
TITLE = "Pull intakes: fetch-mode latency and idle request cost"
TOKEN = "bench-pull-token"
HOUR = 3600.0
BUDGET_PER_DAY = 2 * 86_400  # reference §7.1: 2 requests/s = 172,800 a day
BUDGET_PER_HOUR = 2.0 * HOUR  # the standard plan: 2 requests a second sustained
SALES = 2  # the sample company's Sales department: its people may use `marketing`


async def message_latencies(work: Path, poll: float, count: int, seed: int) -> list[float]:
    """Seconds from each message to its add, messages one after another at random moments."""
    portal = FakePortal(rate=100.0, burst=1000)
    env = {
        "B24_BOT_TOKEN": TOKEN,
        "B24_APP_TOKEN": "",
        "AUTOJOIN_BOT_POLL_SECONDS": str(poll),
        "AUTOJOIN_HIRE_POLL_SECONDS": "0",
        "AUTOJOIN_RECONCILE_MINUTES": "0",
        "B24_RATE": "100",
        "B24_BURST": "1000",
    }
    settings = make_settings(work, portal, **env)
    services = build_services(
        settings,
        router=handlers.router,
        transport=httpx.ASGITransport(app=portal.app),
    )
    assert services.worker is not None
    setup = V2Setup.from_settings(settings)
    bot = await register_v2(services.worker.ctx.client, services.store, setup, time.time())
    people = [portal.upsert_user(None, name=f"P{i}", departments=[SALES]).id for i in range(count)]
    rng = random.Random(seed)
    latencies: list[float] = []
    async with services.running():
        for person in people:
            await anyio.sleep(rng.uniform(0.0, poll))  # a random phase against the poll
            sent = time.perf_counter()
            portal.stage.message(bot.bot_id, person, "join marketing")
            while person not in portal.chat_members(MARKETING):  # noqa: ASYNC110 - portal state
                await anyio.sleep(0.005)
            latencies.append(time.perf_counter() - sent)
    return latencies


async def idle_requests(work: Path, poll: float, hire_poll: float) -> dict[str, int]:
    """Portal requests per method in one idle simulated hour (after each poller's first turn)."""
    clock = FakeClock()
    env: dict[str, Any] = {
        "B24_BOT_TOKEN": TOKEN,
        "B24_APP_TOKEN": "",
        "AUTOJOIN_BOT_POLL_SECONDS": str(poll),
        "AUTOJOIN_HIRE_POLL_SECONDS": str(hire_poll),
    }
    async with open_harness(work, clock=clock, **env) as h:
        fetcher, hires = h.services.fetcher, h.services.hires
        assert fetcher is not None
        assert hires is not None
        assert h.services.worker is not None
        setup = V2Setup.from_settings(h.services.settings)
        await register_v2(h.services.worker.ctx.client, h.services.store, setup, clock())
        due = {
            "fetch": clock() + await fetcher.poll_once(),
            "hires": clock() + await hires.poll_once(),
        }
        h.portal.reset_counters()
        end = clock() + HOUR
        while min(due.values()) < end:
            name = min(due, key=lambda k: due[k])
            clock.advance(max(0.0, due[name] - clock()))
            poller = fetcher if name == "fetch" else hires
            due[name] = clock() + await poller.poll_once()
        calls = [c.method for c in h.portal.state.calls]
    return {m: calls.count(m) for m in sorted(set(calls))}


def run(config: Config) -> Section:
    section = Section(NAME, TITLE)
    polls = (1.0,) if config.quick else (1.0, 5.0)
    count = config.pick(8, 40)
    for poll in polls:
        p50s, p99s = [], []
        for rep in config.repetitions(section.notes, f"latency at {poll:g} s"):
            work = config.fresh_dir(f"latency-{poll:g}-{rep}")
            found = anyio.run(message_latencies, work, poll, count, rep)
            p50s.append(percentile(found, 50))
            p99s.append(percentile(found, 99))
        case = f"v2 message → membership, poll {poll:g} s"
        section.rows.append(row(case, "p50", p50s, "s"))
        section.rows.append(row(case, "p99", p99s, "s"))
        section.rows.append(row(case, "p50 / poll interval", [v / poll for v in p50s], "×"))
        section.rows.append(row(case, "p99 / poll interval", [v / poll for v in p99s], "×"))
        section.targets.append(
            Target(
                f"fetch latency at {poll:g} s",
                "p99 within one poll interval plus 1 s of work",
                max(p99s) <= poll + 1.0,
                f"worst p99 {max(p99s):.2f} s",
            )
        )
    for poll, hire_poll in ((5.0, 300.0), (30.0, 300.0)):
        work = config.fresh_dir(f"idle-{poll:g}")
        counts = anyio.run(idle_requests, work, poll, hire_poll)
        fetch = counts.get("imbot.v2.event.get", 0)
        users = counts.get("user.get", 0)
        case = f"idle hour, fetch every {poll:g} s, hire poll every {hire_poll:g} s"
        section.rows.append(row(case, "imbot.v2.Event.get", [fetch], "requests"))
        section.rows.append(row(case, "user.get", [users], "requests"))
        share = [100.0 * sum(counts.values()) / BUDGET_PER_HOUR]
        daily = [100.0 * sum(counts.values()) / BUDGET_PER_DAY]
        section.rows.append(row(case, "share of an hour at 2/s", share, "%"))
        section.rows.append(row(case, "share of the plan's daily budget", daily, "%"))
        section.targets.append(
            Target(
                f"idle cost, fetch every {poll:g} s",
                "an idle hour well under 1% of the standard plan's daily budget (172,800)",
                daily[0] < 0.5,
                f"{daily[0]:.2f}% of a day, {share[0]:.1f}% of an hour at 2/s "
                f"({sum(counts.values())} requests an hour)",
            )
        )
    section.notes += [
        f"Latency: {count} people in Sales write “join marketing” to the bot one after another, "
        "each at a random moment within a poll interval; the fake portal over ASGI at 100 "
        "requests/s (its rate is not what is measured), SQLite, the real service loops.",
        "Idle hour: a FakeClock; both pollers run as their loops would (after their first "
        "turn), nothing happens on the portal; every portal request is counted.",
        "The fetch interval is the setting's: at the default 5 s the bot fetch alone is 720 "
        "requests an hour (10% of 2/s); the reference allows 5–30 s idle. After a fetch "
        "that brought events autojoin looks again after min(interval, 2 s), and after 2 s "
        "while `hasMore`.",
    ]
    return section
