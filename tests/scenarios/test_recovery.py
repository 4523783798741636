"""A crashed worker's claim comes back within one lease; a live but slow one keeps it.

A crash is played in process the way SIGKILL looks to the database: the worker's step is
cancelled while its request waits at the held portal, nothing is released, and its heartbeat
dies with it. Another worker (a replica, or the restarted process with a new identity) then
claims on the same database. Time is the FakeClock; the heartbeat beats when the test says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import psycopg
import pytest
from psycopg import sql as pgsql

from bot.jobs import ADD_TO_CHAT, ChatAdd, Job
from bot.membership import GROUPS_PER_BATCH
from bot.sandbox import Chat
from bot.sandbox.company import EMEA_DEALS, SALES_ALL_HANDS
from bot.worker import WorkerConfig
from tests.fakes import FakeBeat
from tests.harness import Harness, open_harness
from tests.store.conftest import PG_DSN, Backend, backend, pg_backend, pg_dsn

__all__ = ["backend", "pg_backend", "pg_dsn"]  # fixtures used below

pytestmark = pytest.mark.anyio

LEASE = WorkerConfig().lease_seconds
CHATS = (SALES_ALL_HANDS, EMEA_DEALS)
USERS = (3, 4, 5)
WAIT = 10.0  # real seconds, only as a guard against a hang


async def enqueue_adds(h: Harness) -> None:
    adds = [
        ChatAdd(chat, user, False, ("test",), ("test",), h.clock()).to_job("recovery", None)
        for chat in CHATS
        for user in USERS
    ]
    assert await h.services.store.enqueue(adds, h.clock()) == len(adds)


async def wait_parked(h: Harness) -> None:
    with anyio.fail_after(WAIT):
        while h.portal.counters.held_now < 1:  # noqa: ASYNC110 - a counter, not a signal
            await anyio.sleep(0.01)


async def adds(h: Harness) -> list[Job]:
    jobs = await h.services.store.jobs(limit=10_000)
    return [job for job in jobs if job.kind == ADD_TO_CHAT]


def assert_added_once(h: Harness) -> None:
    for chat in CHATS:
        assert set(USERS) <= h.portal.chat_members(chat)
    sent = [c for c in h.portal.calls_to("im.chat.user.add") if c.status == 200]
    assert sorted(int(c.params["CHAT_ID"]) for c in sent) == sorted(CHATS)


@pytest.fixture
def database_url(backend: Backend) -> str:
    return backend.url


def test_the_defaults_bound_what_a_crash_strands() -> None:
    """A crash parks at most one batch request's work, for seconds (it was up to 20,000
    jobs of any number of chats, for two minutes)."""
    assert LEASE <= 6.0
    assert WorkerConfig().coalesce_limit <= 5_000
    assert WorkerConfig().coalesce_groups == GROUPS_PER_BATCH


async def test_a_claim_takes_every_due_add_of_one_requests_worth_of_chats(
    tmp_path: Path, database_url: str
) -> None:
    """20 chats with 3 due adds each: the first claim is the 16 oldest chats, all their
    people, in one batch request; the second claim the other 4."""
    chats = range(900, 920)
    async with open_harness(tmp_path, AUTOJOIN_DATABASE_URL=database_url) as h:
        for chat in chats:
            h.portal.state.add_chat(Chat(chat, f"C{chat}", owner=1, members={1}))
        jobs = [
            ChatAdd(chat, user, False).to_job("groups", None) for user in USERS for chat in chats
        ]
        assert await h.services.store.enqueue(jobs, h.clock()) == len(jobs)
        worker = h.replica("worker-groups")
        before = h.portal.http_requests
        assert await worker.step() == GROUPS_PER_BATCH * len(USERS)
        assert h.portal.http_requests - before == 1
        first = {int(c.params["CHAT_ID"]) for c in h.portal.calls_to("im.chat.user.add")}
        assert first == set(chats[:GROUPS_PER_BATCH])
        assert await worker.step() == (len(chats) - GROUPS_PER_BATCH) * len(USERS)
        assert await worker.step() == 0
        for chat in chats:
            assert set(USERS) <= h.portal.chat_members(chat)


async def test_a_crashed_workers_claim_is_taken_over_within_one_lease(
    tmp_path: Path, database_url: str
) -> None:
    async with open_harness(tmp_path, AUTOJOIN_DATABASE_URL=database_url) as h:
        await enqueue_adds(h)
        h.portal.hold()
        crashed = h.replica("worker-crashed")
        async with anyio.create_task_group() as tg:
            tg.start_soon(crashed.step)
            await wait_parked(h)
            tg.cancel_scope.cancel()  # SIGKILL: no release, no heartbeat from now on
        h.portal.release()
        assert {(j.state, j.lease_owner) for j in await adds(h)} == {("running", "worker-crashed")}
        restarted = h.replica("worker-restarted")
        h.clock.advance(LEASE - 1.0)
        assert await restarted.step() == 0  # still the dead worker's
        h.clock.advance(1.001)
        assert await restarted.step() == len(CHATS) * len(USERS)
        assert {j.state for j in await adds(h)} == {"done"}
        assert_added_once(h)


async def test_a_slow_call_longer_than_the_lease_keeps_its_claim(
    tmp_path: Path, database_url: str
) -> None:
    async with open_harness(tmp_path, AUTOJOIN_DATABASE_URL=database_url) as h:
        await enqueue_adds(h)
        h.portal.hold()
        beat = FakeBeat()
        slow, other = h.replica("worker-slow", beat), h.replica("worker-other")
        handled: list[int] = []

        async def run_slow() -> None:
            handled.append(await slow.step())

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_slow)
            await wait_parked(h)
            for _ in range(6):  # two leases' worth of time at the portal
                h.clock.advance(LEASE / 3)
                with anyio.fail_after(WAIT):
                    await beat.tick()
                assert {j.lease_until for j in await adds(h)} == {h.clock() + LEASE}
                assert await other.step() == 0
            h.portal.release()
        assert handled == [len(CHATS) * len(USERS)]
        assert beat.intervals[0] == LEASE / 3
        assert {(j.state, j.attempts) for j in await adds(h)} == {("done", 1)}
        assert_added_once(h)


@contextmanager
def jobs_locked(schema: str) -> Iterator[None]:
    """The jobs table locked from outside: every write to it fails on the lock timeout."""
    with psycopg.connect(PG_DSN, connect_timeout=10) as pg:
        pg.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(schema)))
        pg.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
        yield
        pg.rollback()


@pytest.mark.postgres
async def test_a_failed_heartbeat_does_not_end_the_step(
    tmp_path: Path,
    pg_backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")
    schema = pg_backend.url.rsplit("schema=", 1)[1]
    async with open_harness(tmp_path, AUTOJOIN_DATABASE_URL=pg_backend.url) as h:
        await enqueue_adds(h)
        h.portal.hold()
        beat = FakeBeat()
        worker = h.replica("worker-beating", beat)
        handled: list[int] = []

        async def run() -> None:
            handled.append(await worker.step())

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await wait_parked(h)
            claimed_until = {j.lease_until for j in await adds(h)}
            h.clock.advance(LEASE / 3)
            with caplog.at_level(logging.WARNING, logger="autojoin.worker"), jobs_locked(schema):
                with anyio.fail_after(WAIT):
                    await beat.tick()  # the extension fails on the lock ...
            assert "lease heartbeat failed" in caplog.text
            assert {j.lease_until for j in await adds(h)} == claimed_until
            h.clock.advance(LEASE / 3)
            with anyio.fail_after(WAIT):
                await beat.tick()  # ... and the next beat extends again
            assert {j.lease_until for j in await adds(h)} == {h.clock() + LEASE}
            h.portal.release()
        assert handled == [len(CHATS) * len(USERS)]
        assert_added_once(h)


async def test_a_claim_of_coalesced_adds_is_bounded(tmp_path: Path, database_url: str) -> None:
    """A backlog larger than one claim goes out in claims of `coalesce_limit` jobs, each one
    coalesced into a single batch request for its chats."""
    limit = WorkerConfig().coalesce_limit
    users = range(1000, 1000 + limit + limit // 2)
    async with open_harness(tmp_path, AUTOJOIN_DATABASE_URL=database_url) as h:
        for user in users:
            h.portal.upsert_user(user, name=f"U{user}", departments=[5])
        jobs = [ChatAdd(SALES_ALL_HANDS, user, False).to_job("bounded", None) for user in users]
        assert await h.services.store.enqueue(jobs, h.clock()) == len(jobs)
        worker = h.replica("worker-bounded")
        before = h.portal.http_requests
        assert await worker.step() == limit
        assert h.portal.http_requests - before == 1
        assert await worker.step() == len(users) - limit
        assert await worker.step() == 0
        assert set(users) <= h.portal.chat_members(SALES_ALL_HANDS)
