"""Bot fetch across processes: kill -9 around a fetched event's commit (after a restart every
event is handled once), and two `serve` processes on one PostgreSQL database (one fetches).

Real `autojoin serve` processes in fetch mode (no token, no public URL) against the fake
portal on a loopback port. The portal's dispatcher is wrapped (test infrastructure only) so
the crash lands exactly in the window under test:

- between `Event.get` and the commit: the answer is served, then the test locks the database
  before the service can commit, and kills it while it waits;
- between the commit and the acknowledging call: the answer is served, then the portal holds
  every later request; the test waits for the commit and kills the service.

Either way the portal still has the events unacknowledged, serves them again after the
restart, and the once-only keys make the second delivery a duplicate.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
import pytest

from bot.jobs import BOT_REPLY, BOT_REQUEST
from bot.sandbox import FakePortal
from bot.sandbox.company import MARKETING
from bot.store import open_store
from tests.processes import ServeProcess, postgres_schema, wait_until
from tests.scenarios.v2_kit import database_url, pull_only_env, register_bot

__all__ = ["database_url"]
WAIT = 60.0


@dataclass
class Locker:
    """A write lock on the service's database, taken from another connection."""

    url: str
    _release: Callable[[], None] | None = None

    def lock(self) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(
                self.url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
            )
            conn.execute("BEGIN IMMEDIATE")

            def release_file() -> None:
                conn.execute("ROLLBACK")
                conn.close()

            self._release = release_file
            return
        parts = urlsplit(self.url)
        schema = parse_qs(parts.query)["schema"][0]
        pg = psycopg.connect(urlunsplit(parts._replace(query="")))
        pg.execute(f'LOCK TABLE "{schema}".events IN EXCLUSIVE MODE')

        def release_table() -> None:
            pg.rollback()
            pg.close()

        self._release = release_table

    def unlock(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


@dataclass
class Stage:
    tmp: Path
    portal: FakePortal
    url: str
    env: dict[str, str]
    bot_id: int = 0
    starts: int = 0

    def serve(self) -> ServeProcess:
        self.starts += 1
        return ServeProcess(env=self.env, cwd=self.tmp, log=self.tmp / f"serve{self.starts}.log")

    def after_fetch(self, action: Callable[[], None]) -> threading.Event:
        """Run `action` in the portal, once, right after it served events to Event.get."""
        dispatcher = self.portal.dispatcher
        original = dispatcher.request
        done = threading.Event()

        def request(*args: Any) -> Any:
            answer = original(*args)
            result = answer.body.get("result") if isinstance(answer.body, dict) else None
            fetched = isinstance(result, dict) and bool(result.get("events"))
            if args[2] == "imbot.v2.event.get" and fetched and not done.is_set():
                action()
                done.set()
            return answer

        setattr(dispatcher, "request", request)  # noqa: B010 - the fake's own dispatcher
        return done

    def ask(self) -> None:
        self.portal.stage.message(self.bot_id, 2, "marketing, please")
        self.portal.stage.command(self.bot_id, 3, "join", "marketing")

    def pending(self) -> int:
        return len(self.portal.stage.queue(self.bot_id)["pending"])

    def jobs(self, kind: str) -> list[Any]:
        with closing(open_store(self.url)) as store:
            return [j for j in store.jobs(limit=1000) if j.kind == kind]

    def replies(self) -> list[str]:
        return [m.method for m in self.portal.messages if m.bot_id == self.bot_id]

    def assert_handled_once(self) -> None:
        def done() -> bool:
            return (
                {2, 3} <= self.portal.chat_members(MARKETING)
                and len(self.replies()) >= 2
                and self.pending() == 0
            )

        wait_until(done, timeout=WAIT, what="both requests handled and acknowledged")
        requests = self.jobs(BOT_REQUEST)
        assert len(requests) == 2
        assert len({j.event_key for j in requests}) == 2
        assert len(self.jobs(BOT_REPLY)) == 2
        assert sorted(self.replies()) == ["imbot.v2.Chat.Message.send", "imbot.v2.Command.answer"]


@contextmanager
def staged(tmp_path: Path, database_url: str) -> Iterator[Stage]:
    """The fake portal on a loopback port and a bot registered by `autojoin register-bot`."""
    portal = FakePortal(rate=100.0, burst=1000)
    with portal.serve_in_thread() as base:
        env = pull_only_env(
            tmp_path,
            portal,
            base,
            database_url,
            AUTOJOIN_HIRE_POLL_SECONDS="0",
            AUTOJOIN_LEASE_SECONDS="2",
        )
        register_bot(tmp_path, env)
        [bot_id] = portal.state.bots
        yield Stage(tmp_path, portal, database_url, env, bot_id)


@pytest.fixture
def stage(tmp_path: Path, database_url: str) -> Iterator[Stage]:
    with staged(tmp_path, database_url) as ready:
        yield ready


@contextmanager
def killed(service: ServeProcess) -> Iterator[ServeProcess]:
    try:
        yield service
    finally:
        service.stop()


def test_kill_between_event_get_and_the_commit(stage: Stage) -> None:
    locker = Locker(stage.url)
    stalled = stage.after_fetch(locker.lock)
    try:
        with killed(stage.serve().start()) as first:
            stage.ask()
            wait_until(stalled.is_set, timeout=WAIT, what="Event.get to serve the events")
            assert first.kill() == -9
    finally:
        locker.unlock()
    assert stage.pending() == 2  # served, never acknowledged
    assert stage.jobs(BOT_REQUEST) == []  # and never committed
    with killed(stage.serve().start()):
        stage.assert_handled_once()


def test_kill_between_the_commit_and_the_acknowledging_call(stage: Stage) -> None:
    held = stage.after_fetch(stage.portal.hold)  # every later request waits at the portal
    try:
        with killed(stage.serve().start()) as first:
            stage.ask()
            wait_until(held.is_set, timeout=WAIT, what="Event.get to serve the events")
            wait_until(lambda: len(stage.jobs(BOT_REQUEST)) == 2, timeout=WAIT, what="the commit")
            assert first.kill() == -9
        assert stage.pending() == 2  # committed, but the acknowledging call never came
    finally:
        stage.portal.release()
    with killed(stage.serve().start()):
        stage.assert_handled_once()


@pytest.mark.postgres
def test_two_serve_processes_on_one_postgres_fetch_one_at_a_time(tmp_path: Path) -> None:
    with (
        postgres_schema(prefix="autojoin_fetch2") as url,
        staged(tmp_path, url) as stage,
        killed(stage.serve().start()) as one,
        killed(stage.serve().start()) as two,
    ):
        askers = [2, 3, 4, 5, 6, 7, 8, 9, 10]
        for user in askers:
            stage.portal.stage.message(stage.bot_id, user, "marketing, please")

        def done() -> bool:
            assert one.alive(), one.tail()
            assert two.alive(), two.tail()
            replied = [m for m in stage.portal.messages if m.bot_id == stage.bot_id]
            return len(replied) >= len(askers) and stage.pending() == 0

        wait_until(done, timeout=WAIT, what="every request answered and acknowledged")
        assert set(askers) <= stage.portal.chat_members(MARKETING)
        assert len(stage.jobs(BOT_REQUEST)) == len(askers)
        assert len(stage.replies()) == len(askers)
        fetched = ["(fetched)" in p.output() for p in (one, two)]
        assert sorted(fetched) == [False, True], "exactly one process fetched"
