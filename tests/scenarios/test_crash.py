"""Crashes and shutdowns of a real `autojoin serve` process: nothing accepted is lost or done twice.

The fake portal runs in this process on a loopback port; autojoin runs as a subprocess and
is killed with SIGKILL at the moments that matter, while the portal is held so the work
cannot have finished first. A fresh process then finishes the queue, and every (chat, user)
pair ends up in its chat with exactly one completed audit row. Most tests use a 2 s lease so
a killed process's claim comes back quickly; one checks the default (6 s) lease itself.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from bot.jobs import ADD_TO_CHAT, AuditEntry, Job
from bot.sandbox import FakePortal
from bot.sandbox.company import EMEA_DEALS, SALES_ALL_HANDS
from bot.sandbox.events import APP_TOKEN, user_add
from bot.sandbox.methods import as_list
from bot.services import STOP_GRACE
from bot.store import open_store
from bot.store.base import Store
from bot.store.urls import parse_url
from tests.harness import FORM, REPO
from tests.processes import ServeProcess, postgres_schema, wait_until

pytestmark = pytest.mark.slow

SALES_DACH = 4  # rules.yaml: sales-all-hands (101, history shown) and emea-deals (102, hidden)
CHATS = (SALES_ALL_HANDS, EMEA_DEALS)
DRAIN_TIMEOUT = 60.0
WAIT = 30.0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'autojoin.db'}"
    else:
        with postgres_schema(prefix="autojoin_crash") as url:
            yield url


@dataclass
class Stage:
    """The fake portal on a real port and everything a fresh `autojoin serve` needs."""

    tmp: Path
    portal: FakePortal
    database_url: str
    env: dict[str, str]
    starts: int = 0

    def serve(self) -> ServeProcess:
        self.starts += 1
        return ServeProcess(env=self.env, cwd=self.tmp, log=self.tmp / f"serve-{self.starts}.log")

    def hire(self, service: ServeProcess, user_id: int) -> list[tuple[int, int]]:
        """Post ONUSERADD for a new Sales DACH employee; return the pairs the rules grant."""
        user = self.portal.upsert_user(user_id, name=f"New{user_id}", departments=[SALES_DACH])
        response = service.post("/events", user_add(user, token=APP_TOKEN), FORM)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"
        return [(chat, user_id) for chat in CHATS]

    @contextmanager
    def store(self) -> Iterator[Store]:
        with closing(open_store(self.database_url)) as store:
            yield store

    def jobs(self) -> list[Job]:
        with self.store() as store:
            return store.jobs(limit=1000)

    def wait_drained(self, service: ServeProcess) -> None:
        def drained() -> bool:
            assert service.alive(), service.tail()
            with self.store() as store:
                counts = store.counts()
            return counts["pending"] == 0 and counts["running"] == 0

        wait_until(drained, timeout=DRAIN_TIMEOUT, what="the queue to drain")

    def added(self, user_id: int, chat_id: int) -> bool:
        """The portal has run an `im.chat.user.add` naming this user for this chat."""
        return any(
            call.status == 200
            and str(call.params.get("CHAT_ID")) == str(chat_id)
            and str(user_id) in {str(u) for u in as_list(call.params.get("USERS"))}
            for call in self.portal.calls_to("im.chat.user.add")
        )

    def assert_each_pair_done_once(self, pairs: list[tuple[int, int]]) -> Counter[str]:
        for chat, user in pairs:
            assert user in self.portal.chat_members(chat), (chat, user)
        with self.store() as store:
            audit = store.history(limit=1000)
            counts = store.counts()
        completed = [
            (e.chat_id, e.user_id) for e in audit if e.outcome in {"added", "already_member"}
        ]
        assert Counter(completed) == Counter(pairs)
        assert [e for e in audit if e.outcome not in {"added", "already_member"}] == []
        assert (counts["pending"], counts["running"], counts["dead"]) == (0, 0, 0)
        return Counter(e.outcome for e in audit)


@contextmanager
def staged(tmp_path: Path, database_url: str, **extra: str) -> Iterator[Stage]:
    """A fast fake portal (rate 100/s, so throttling costs no time) on a loopback port."""
    portal = FakePortal(rate=100.0, burst=1000)
    shutil.copy(REPO / "rules.yaml", tmp_path / "rules.yaml")
    with portal.serve_in_thread() as base:
        env = {
            "B24_WEBHOOK_URL": portal.webhook_url(base),
            "B24_APP_TOKEN": APP_TOKEN,
            "B24_RATE": "100",
            "B24_BURST": "1000",
            "AUTOJOIN_RULES": str(tmp_path / "rules.yaml"),
            "AUTOJOIN_DATABASE_URL": database_url,
            "AUTOJOIN_LEASE_SECONDS": "2",
            "AUTOJOIN_COALESCE_MS": "0",
            "AUTOJOIN_LOG_LEVEL": "INFO",
            **extra,
        }
        yield Stage(tmp_path, portal, database_url, env)


@pytest.fixture
def stage(tmp_path: Path, database_url: str) -> Iterator[Stage]:
    with staged(tmp_path, database_url) as ready:
        yield ready


def warm_up(stage: Stage, service: ServeProcess) -> list[tuple[int, int]]:
    """One hire all the way through, so the department tree is cached: the next hire's only
    portal request is its add batch."""
    pairs = stage.hire(service, 50)
    stage.wait_drained(service)
    return pairs


def wait_parked(stage: Stage) -> None:
    """Until the worker's request waits at the held portal with its add jobs claimed."""
    wait_until(
        lambda: stage.portal.counters.held_now >= 1,
        timeout=WAIT,
        what="a request parked at the held portal",
    )

    def claimed() -> bool:
        adds = [j for j in stage.jobs() if j.kind == ADD_TO_CHAT and j.payload["user_id"] == 51]
        return len(adds) == len(CHATS) and all(j.state == "running" for j in adds)

    wait_until(claimed, timeout=WAIT, what="the add jobs to be claimed")


@contextmanager
def store_locked(database_url: str) -> Iterator[None]:
    """Hold the database's write lock from outside, so no commit of the service can happen."""
    target = parse_url(database_url)
    if target.kind == "sqlite":
        conn = sqlite3.connect(target.location, isolation_level=None, timeout=WAIT)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    assert target.schema is not None
    with psycopg.connect(target.location, connect_timeout=10) as pg:
        pg.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(target.schema)))
        pg.execute("SET lock_timeout = '30s'")
        pg.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
        yield
        pg.rollback()


def finish_after_restart(stage: Stage, pairs: list[tuple[int, int]]) -> Counter[str]:
    with stage.serve() as second:
        stage.portal.release()
        stage.wait_drained(second)
        return stage.assert_each_pair_done_once(pairs)


def test_kill_right_after_the_acknowledgement_loses_nothing(stage: Stage) -> None:
    """An event answered 2xx survives a SIGKILL that comes before any of its work."""
    with stage.serve() as first:
        pairs = warm_up(stage, first)
        stage.portal.hold()
        pairs += stage.hire(first, 51)
        first.kill()
    assert not any(stage.added(51, chat) for chat in CHATS)
    finish_after_restart(stage, pairs)


def test_kill_while_a_claim_is_held_at_the_portal_loses_nothing(stage: Stage) -> None:
    """Claimed jobs of a killed worker come back when their lease ends, and are done once."""
    with stage.serve() as first:
        pairs = warm_up(stage, first)
        stage.portal.hold()
        pairs += stage.hire(first, 51)
        wait_parked(stage)
        first.kill()
    assert not any(stage.added(51, chat) for chat in CHATS)
    finish_after_restart(stage, pairs)


def test_kill_between_the_portal_answer_and_the_commit_adds_once(stage: Stage) -> None:
    """The portal added the user but the result never committed: the rerun finds the user
    already there and records that, so the pair is completed once, not twice."""
    with stage.serve() as first:
        pairs = warm_up(stage, first)
        stage.portal.hold()
        pairs += stage.hire(first, 51)
        wait_parked(stage)
        with store_locked(stage.database_url):
            stage.portal.release()
            wait_until(
                lambda: all(stage.added(51, chat) for chat in CHATS),
                timeout=WAIT,
                what="the portal to run the adds",
            )
            first.kill()
    with stage.store() as store:
        unfinished = [j for j in store.jobs(("running",)) if j.payload.get("user_id") == 51]
    assert len(unfinished) == len(CHATS), "the results were committed before the kill"
    outcomes = finish_after_restart(stage, pairs)
    reruns = {(e.chat_id, e.outcome) for e in stage_history(stage) if e.user_id == 51}
    assert reruns == {(chat, "already_member") for chat in CHATS}
    assert outcomes["added"] == len(CHATS)  # the warm-up hire's


def stage_history(stage: Stage) -> list[AuditEntry]:
    with stage.store() as store:
        return store.history(limit=1000)


def test_a_killed_claim_expires_within_the_default_lease(tmp_path: Path) -> None:
    """Without AUTOJOIN_LEASE_SECONDS a killed worker's jobs are free again at most 6 s after
    the kill (it was 120 s), and the restarted process, a new identity, finishes them."""
    with staged(tmp_path, f"sqlite:///{tmp_path / 'autojoin.db'}") as stage:
        del stage.env["AUTOJOIN_LEASE_SECONDS"]
        with stage.serve() as first:
            pairs = warm_up(stage, first)
            stage.portal.hold()
            pairs += stage.hire(first, 51)
            wait_parked(stage)
            first.kill()
            killed_at = time.time()
        adds = [j for j in stage.jobs() if j.kind == ADD_TO_CHAT and j.payload["user_id"] == 51]
        assert all(j.state == "running" and j.lease_until is not None for j in adds)
        assert max(j.lease_until or 0.0 for j in adds) - killed_at <= 15.0
        finish_after_restart(stage, pairs)


def claims_of(stage: Stage, user_id: int) -> list[tuple[int, str, str | None, int]]:
    adds = [j for j in stage.jobs() if j.kind == ADD_TO_CHAT and j.payload["user_id"] == user_id]
    return sorted((j.id, j.state, j.lease_owner, j.attempts) for j in adds)


def test_a_live_worker_keeps_its_claim_through_a_call_longer_than_the_lease(
    stage: Stage,
) -> None:
    """The portal holds the call for three leases while a second replica polls: the heartbeat
    (real time) keeps the claim, so the second never takes the jobs and each add is sent once."""
    with stage.serve() as first:
        pairs = warm_up(stage, first)
        stage.portal.hold()
        pairs += stage.hire(first, 51)
        wait_parked(stage)
        claimed = claims_of(stage, 51)
        with stage.serve() as second:
            time.sleep(3 * float(stage.env["AUTOJOIN_LEASE_SECONDS"]))
            assert claims_of(stage, 51) == claimed
            stage.portal.release()
            stage.wait_drained(first)
            logs = first.output() + second.output()
    outcomes = stage.assert_each_pair_done_once(pairs)
    assert outcomes == {"added": len(pairs)}
    assert "lease lost" not in logs
    for chat in CHATS:
        calls = [
            c
            for c in stage.portal.calls_to("im.chat.user.add")
            if str(c.params.get("CHAT_ID")) == str(chat)
            and "51" in map(str, as_list(c.params.get("USERS")))
        ]
        assert len(calls) == 1, calls


def test_sigterm_releases_the_claim_it_cannot_finish(stage: Stage) -> None:
    """SIGTERM with a request stuck at the portal: the process exits within seconds and the
    job goes back to the queue without a spent attempt; the next process completes it."""
    with stage.serve() as first:
        pairs = warm_up(stage, first)
        stage.portal.hold()
        pairs += stage.hire(first, 51)
        wait_parked(stage)
        started = time.monotonic()
        first.terminate(timeout=30.0)
        took = time.monotonic() - started
    assert took < STOP_GRACE + 5.0, f"SIGTERM took {took:.1f}s"
    adds = [j for j in stage.jobs() if j.kind == ADD_TO_CHAT and j.payload["user_id"] == 51]
    assert [(j.state, j.attempts) for j in adds] == [("pending", 0)] * len(CHATS)
    assert "released" in first.output()
    finish_after_restart(stage, pairs)


@pytest.mark.postgres
def test_the_worker_survives_a_database_outage(tmp_path: Path) -> None:
    """Statements fail while the jobs table is locked from outside (lock_timeout 200 ms);
    once the lock is gone the same process goes on working."""
    with (
        postgres_schema(prefix="autojoin_outage") as url,
        staged(tmp_path, url, PGOPTIONS="-c lock_timeout=200") as stage,
        stage.serve() as service,
    ):
        pairs = warm_up(stage, service)
        with store_locked(url):
            wait_until(
                lambda: "canceling statement due to lock timeout" in service.output(),
                timeout=WAIT,
                what="the worker to fail on the lock",
            )
        assert service.alive(), service.tail()
        pairs += stage.hire(service, 51)
        stage.wait_drained(service)
        stage.assert_each_pair_done_once(pairs)
