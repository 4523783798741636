"""The stage for `bench/delivery.py`: a fake portal, hires, and `autojoin serve` processes.

Kept apart from the benchmark's figures so each file stays readable: this one knows how to
start processes on one database, post events to them, wait until every hire has landed and
read back what the portal and the audit trail say.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from bench.load import Load, post_all
from bench.procs import LOOPBACK, Server, child_env, python, wait_until
from bench.workload import FIRST_CHAT, bodies, settings_env, write_rules
from bot.sandbox import FakePortal, User
from bot.sandbox.company import generated_company
from bot.store import open_store

TIME_SCALE = 10.0  # the portal drains 10× faster; autojoin's B24_RATE is scaled with it
RATE, BURST = 2.0, 50
HIRE_DEPARTMENT = 2
FIRST_HIRE = 1_000
LEASE_SECONDS = 6.0  # a killed process's claims come back after this (the default)
CONCURRENCY = 32
LAND_TIMEOUT = 120.0
POST_LIMIT = 180.0


@dataclass(frozen=True, slots=True)
class Stage:
    """A portal with `hires` in one department and rules granting that department K chats."""

    portal: FakePortal
    hires: list[User]
    chats: list[int]
    rules: Path

    @property
    def pairs(self) -> int:
        return len(self.hires) * len(self.chats)

    def bodies(self) -> list[bytes]:
        return bodies(self.hires)

    def landed(self) -> int:
        """(chat, user) pairs that are members now, by the portal's own state."""
        ids = {u.id for u in self.hires}
        return sum(len(self.portal.chat_members(c) & ids) for c in self.chats)


def make_stage(n: int, k: int, work: Path, seed: int, time_scale: float = TIME_SCALE) -> Stage:
    state = generated_company(users=20, departments=10, chats=k, seed=seed)
    hires = [
        User(uid, "Bench", f"Hire{uid}", True, [HIRE_DEPARTMENT], f"hire.{uid}@example.com")
        for uid in range(FIRST_HIRE, FIRST_HIRE + n)
    ]
    for user in hires:
        state.add_user(user)
    chats = [FIRST_CHAT + c for c in range(k)]
    rule = {"name": "new-hires", "departments": [HIRE_DEPARTMENT], "chats": chats}
    rules = write_rules(work / "rules.yaml", [rule])
    portal = FakePortal(state, rate=RATE, burst=BURST, time_scale=time_scale)
    return Stage(portal, hires, chats, rules)


def serve_env(
    webhook: str, rules: Path, database: str, time_scale: float = TIME_SCALE
) -> dict[str, str]:
    """`B24_RATE` scaled like the portal's clock, the burst as it is."""
    env = settings_env(
        webhook=webhook, rules=rules, database=database, rate=RATE * time_scale, burst=BURST
    )
    env["AUTOJOIN_LEASE_SECONDS"] = repr(LEASE_SECONDS)
    env["AUTOJOIN_RECONCILE_MINUTES"] = "0"  # only event delivery reaches the portal
    return env


def server(env: dict[str, str], work: Path, name: str) -> Server:
    argv = python("-m", "bot", "serve", "--host", LOOPBACK, "--port", "{port}")
    return Server(argv, env=child_env(env), cwd=work, log=work / f"{name}.log")


def post_split(targets: Sequence[tuple[str, Sequence[bytes]]], interval: float = 0.0) -> list[Load]:
    """Post each server its bodies, all servers at once: as fast as `CONCURRENCY`
    connections each allow, or (`interval` > 0) one every `interval` seconds per server."""
    loads: list[Load | None] = [None] * len(targets)

    async def one(index: int, url: str, batch: Sequence[bytes]) -> None:
        loads[index] = await post_all(
            url + "/events",
            batch,
            concurrency=1 if interval > 0 else min(CONCURRENCY, max(1, len(batch))),
            expect=b'"accepted"',
            time_limit=POST_LIMIT,
            interval=interval,
        )

    async def go() -> None:
        async with anyio.create_task_group() as group:
            for index, (url, batch) in enumerate(targets):
                group.start_soon(one, index, url, batch)

    anyio.run(go)
    done = [load for load in loads if load is not None]
    for load, (_, batch) in zip(done, targets, strict=True):
        if load.failures or load.sent < len(batch):
            raise RuntimeError(
                f"{load.sent}/{len(batch)} sent, {load.failures} refused: {load.first_failure}"
            )
    return done


def unfinished(database: str) -> int:
    """Jobs still pending or running, read through the store."""
    with closing(open_store(database, migrate=False)) as store:
        counts = store.counts()
    return counts.get("pending", 0) + counts.get("running", 0)


def claims(database: str) -> Counter[str]:
    """Running jobs by the worker holding them."""
    with closing(open_store(database, migrate=False)) as store:
        running = store.jobs(["running"], limit=100_000)
    return Counter(job.lease_owner or "?" for job in running)


def wait_landed(stage: Stage, database: str, timeout: float = LAND_TIMEOUT) -> float:
    """Wait until every pair is a member and no job is left; return when that was seen."""
    wait_until(
        lambda: stage.landed() == stage.pairs and unfinished(database) == 0,
        timeout=timeout,
        what=f"{stage.pairs} (chat, user) pairs to land",
        interval=0.05,
    )
    return time.perf_counter()


@dataclass(frozen=True, slots=True)
class Audit:
    added_once: int  # pairs with exactly one `added` row
    added_twice: int  # pairs with more than one `added` row: an add done twice
    other_rows: int  # rows with another outcome (already_member after a crash, dead, …)


def audit(stage: Stage, database: str) -> Audit:
    with closing(open_store(database, migrate=False)) as store:
        entries = store.history(limit=stage.pairs * 4 + 100)
    hires = {u.id for u in stage.hires}
    ours = [e for e in entries if e.user_id in hires and e.chat_id in stage.chats]
    added = Counter((e.chat_id, e.user_id) for e in ours if e.outcome == "added")
    return Audit(
        sum(1 for count in added.values() if count == 1),
        sum(1 for count in added.values() if count > 1),
        sum(1 for e in ours if e.outcome != "added"),
    )


def rest_calls(server_: Server) -> float:
    """Sum of `autojoin_rest_calls_total` over its labels, from the process's /metrics."""
    text = httpx.get(server_.url + "/metrics", timeout=5.0, trust_env=False).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("autojoin_rest_calls_total{")
    )
