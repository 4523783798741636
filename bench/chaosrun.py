"""One seed of the chaos soak: two `autojoin serve` replicas on one PostgreSQL schema, the
fake portal at the real limit with random 500s, the planned load, and kill -9 all through it.

Both bots are registered first by the real `autojoin register-bot`, faults off: the classic
one (pushed events) and the Chatbots 2.0 one in fetch mode (pulled events); then faults go
on, the replicas start, and once the hire poll has taken its starting point (else the first
polled hires would count as staff) the load and the killer run side by side. Once the load
is delivered and the last killed replica is back, the run waits (bounded) until every
membership exists and no job is left, then reads what happened (`bench/chaosmeasure.py`).
"""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import anyio
import httpx

from bench.chaosload import (
    Bot,
    Delivery,
    Intake,
    PulledIntake,
    PushedIntake,
    Replicas,
    run_load,
)
from bench.chaosmeasure import Kill, SeedResult, first_acks, measure
from bench.chaosplan import BURST, PULLED, PUSHED, RATE, Scale, Stage, make_stage
from bench.procs import LOOPBACK, Server, child_env, python, run_child, wait_until
from bench.workload import served, settings_env
from bot.hires import CURSOR_KEY
from bot.sandbox.events import MEMBER_ID
from bot.store import open_store

FAULT_RATE = 0.10  # of the portal's HTTP requests, answered 500
REPLICAS = 2
CLIENT_ID = "autojoin-chaos-bench-client-3b7e"
BOT_TOKEN = "autojoin-chaos-bench-v2-token-51c0"
V2_CODE = "autojoin_v2"  # the classic bot keeps the default code
PUBLIC_URL = "https://autojoin.example.com"
BOT_POLL_SECONDS = 5.0  # AUTOJOIN_BOT_POLL_SECONDS (its default): how often the queue is fetched
SETTLE_POLL = 0.5
START_POLL_TIMEOUT = 60.0  # for the hire poll's first pass (a 500 backs it off)


class Killer(threading.Thread):
    """kill -9 a random up replica at each planned time, start it again a moment later."""

    def __init__(
        self, replicas: Replicas, times: Sequence[float], scale: Scale, seed: int, began: float
    ) -> None:
        super().__init__(name="chaos-killer", daemon=True)
        self.replicas = replicas
        self.times = list(times)
        self.restart_after = scale.restart_after
        self.rng = random.Random(seed * 7919 + 1)
        self.began = began
        self.stopping = threading.Event()
        self.kills: list[Kill] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for at in self.times:
                if self.stopping.wait(max(0.0, self.began + at - time.monotonic())):
                    return
                up = [i for i, ok in enumerate(self.replicas.up) if ok]
                index = self.rng.choice(up)
                server = self.replicas.servers[index]
                self.replicas.up[index] = False
                killed = time.monotonic()
                server.stop(signal.SIGKILL)
                if self.stopping.wait(self.rng.uniform(*self.restart_after)):
                    return
                server.start()
                self.replicas.up[index] = True
                self.kills.append(Kill(killed - self.began, index, time.monotonic() - killed))
        except BaseException as exc:  # surfaced by the caller after join()
            self.error = exc


def serve_env(stage: Stage, webhook: str, database: str, scale: Scale) -> dict[str, str]:
    env = settings_env(
        webhook=webhook, rules=stage.rules, database=database, rate=RATE, burst=BURST
    )
    env |= {
        "B24_BOT_CLIENT_ID": CLIENT_ID,
        "B24_BOT_TOKEN": BOT_TOKEN,
        "AUTOJOIN_BOT_CODE": V2_CODE,
        # Pushed and polled hires share once-only keys only with the portal's member id.
        "B24_MEMBER_ID": MEMBER_ID,
        "AUTOJOIN_BOT_POLL_SECONDS": repr(BOT_POLL_SECONDS),
        "AUTOJOIN_HIRE_POLL_SECONDS": repr(scale.hire_poll),
        "AUTOJOIN_PUBLIC_URL": PUBLIC_URL,
        "AUTOJOIN_RECONCILE_MINUTES": "0",  # only the events reach the portal
    }
    if scale.lease_seconds is not None:
        env["AUTOJOIN_LEASE_SECONDS"] = repr(scale.lease_seconds)
    return env


def register_bots(stage: Stage, env: dict[str, str], work: Path) -> tuple[Bot, int]:
    """`autojoin register-bot` twice, the way an admin runs it: the classic bot (no
    B24_BOT_TOKEN, so CLIENT_ID), then the Chatbots 2.0 one; the ids come from the portal.
    The v2 run stores its bot id last, so that is the bot the replicas fetch for."""
    classic = {k: v for k, v in env.items() if k not in {"B24_BOT_TOKEN", "AUTOJOIN_BOT_CODE"}}
    for name, settings in (("register", classic), ("register-v2", env)):
        argv = python("-m", "bot", "register-bot")
        log = work / f"{name}.log"
        done = run_child(argv, env=child_env(settings), cwd=work, log=log, timeout=60.0)
        if done.returncode != 0:
            raise RuntimeError(f"register-bot failed:\n{done.output[-2000:]}")
    with stage.portal.lock:
        bots = stage.portal.state.bots.values()
        [bot] = [b for b in bots if b.v2 is None]
        [v2] = [b.id for b in bots if b.v2 is not None]
        join = next(
            c.id
            for c in stage.portal.state.commands.values()
            if c.command == "join" and c.bot_id == bot.id
        )
    return Bot(bot.id, bot.code, join, CLIENT_ID), v2


def hire_cursor(database: str) -> str | None:
    """The hire poll's starting point: set by its first pass, after which new users count."""
    with closing(open_store(database, migrate=False)) as store:
        return store.get_state(CURSOR_KEY)


def unfinished(database: str) -> int:
    with closing(open_store(database, migrate=False)) as store:
        counts = store.counts()
    return counts.get("pending", 0) + counts.get("running", 0)


def settled(stage: Stage, deliveries: Sequence[Delivery], database: str) -> bool:
    """Every acknowledged or published (pulled) event's memberships exist and no job is
    pending or running: a pulled event must first be found by a poll."""
    acks = set(first_acks(deliveries)) | {d.index for d in deliveries if d.published_at}
    with stage.portal.lock:
        members = {cid: set(chat.members) for cid, chat in stage.portal.state.chats.items()}
    for planned in stage.plan:
        if planned.index in acks:
            for chat, user, _ in stage.expected(planned.event):
                if user not in members[chat]:
                    return False
    return unfinished(database) == 0


def run_seed(scale: Scale, seed: int, work: Path, database: str) -> SeedResult:
    """The whole seed on the fresh schema `database`; every process is stopped afterwards."""
    started = time.monotonic()
    stage = make_stage(scale, seed, work)
    with served(stage.portal) as webhook:
        env = serve_env(stage, webhook, database, scale)
        bot, v2_bot = register_bots(stage, env, work)
        stage.portal.reset_counters()  # the figures are the soak's, not the registration's
        stage.portal.set_request_failure_rate(FAULT_RATE, seed=seed)
        argv = python("-m", "bot", "serve", "--host", LOOPBACK, "--port", "{port}")
        servers = [
            Server(argv, env=child_env(env), cwd=work, log=work / f"replica-{i}.log")
            for i in range(REPLICAS)
        ]
        replicas = Replicas(servers)
        killer: Killer | None = None
        try:
            with ThreadPoolExecutor(REPLICAS) as pool:
                list(pool.map(Server.start, servers))
            replicas.up = [True] * REPLICAS
            wait_until(
                lambda: hire_cursor(database),
                timeout=START_POLL_TIMEOUT,
                what="the hire poll's first pass",
                interval=SETTLE_POLL,
            )
            began = time.monotonic()
            killer = Killer(replicas, stage.kills, scale, seed, began)
            killer.start()
            deliveries = _deliver(stage, replicas, bot, v2_bot, began)
            killer.join()
            if killer.error is not None:
                raise RuntimeError(f"the killer failed: {killer.error!r}") from killer.error
            last_event = max(p.at for p in stage.plan)
            try:
                wait_until(
                    lambda: settled(stage, deliveries, database),
                    timeout=max(1.0, began + last_event + scale.settle_limit - time.monotonic()),
                    what="the soak to settle",
                    interval=SETTLE_POLL,
                )
                settle = time.monotonic() - began - last_event
            except TimeoutError:
                settle = math.nan
            result = measure(stage, deliveries, database, seed)
        finally:
            if killer is not None:
                killer.stopping.set()
                killer.join()
            for server in servers:
                server.stop()
    assert killer is not None
    result.kills = killer.kills
    result.last_event_at = last_event
    result.settled_after = settle
    result.seconds = time.monotonic() - started
    (work / "result.json").write_text(json.dumps(_summary(result), indent=1))
    return result


def _deliver(
    stage: Stage, replicas: Replicas, bot: Bot, v2_bot: int, began: float
) -> list[Delivery]:
    async def go() -> list[Delivery]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        async with httpx.AsyncClient(timeout=10.0, limits=limits, trust_env=False) as http:
            intakes: dict[str, Intake] = {
                PUSHED: PushedIntake(http, bot),
                PULLED: PulledIntake(stage.portal, v2_bot, stage.plan),
            }
            return await run_load(stage.plan, intakes, replicas, began)

    return anyio.run(go)


def _summary(result: SeedResult) -> dict[str, object]:
    """The seed's counts and kills (not its latency lists), for a look after the run."""
    fields = asdict(result)
    fields["by_intake"] = {
        name: {"events": share.events, "lost": share.lost}
        for name, share in result.by_intake.items()
    }
    return {k: v for k, v in fields.items() if k not in {"latencies", "reply_latencies"}}
