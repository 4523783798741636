"""A rate-limit answer while another process holds the shared budget's lock.

On QUERY_LIMIT_EXCEEDED the client marks the shared bucket full. The bucket lives in the
store, and another autojoin process may hold its lock. That write must wait on the worker's
own connection, never on the event loop: `/healthz` and `POST /events` keep answering.
The check is about order, not speed: both answers must arrive while the lock is still held.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import anyio
import psycopg
import pytest

from bot.rest.bucket import BUCKET_KEY
from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, user_add
from tests.harness import open_harness
from tests.store.conftest import PG_DSN, Backend, pg_backend, pg_dsn

__all__ = ["pg_backend", "pg_dsn"]  # fixtures used below

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

HOLD_AT_MOST = 20.0  # seconds; the test releases the lock as soon as it has its answers


class BudgetLock:
    """Holds the advisory lock that guards the bucket's key, from another connection."""

    def __init__(self, schema: str) -> None:
        self.key = zlib.crc32(f"autojoin.kv:{schema}:{BUCKET_KEY}".encode())
        self.locked = threading.Event()
        self.done = threading.Event()
        self.released = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        with psycopg.connect(PG_DSN) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.key,))
            self.locked.set()
            self.done.wait(HOLD_AT_MOST)
        self.released.set()

    def waiters(self) -> int:
        """How many other sessions wait for this lock right now."""
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = %s",
                (self.key,),
            ).fetchone()
        return int(row[0]) if row else 0

    def __enter__(self) -> BudgetLock:
        self._thread.start()
        assert self.locked.wait(10), "could not take the lock"
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self._thread.join(HOLD_AT_MOST + 5)


def hire(portal: FakePortal, user_id: int) -> bytes:
    user = portal.upsert_user(user_id, name="Lu", last_name="Kim", departments=[4])
    return user_add(user, token=APP_TOKEN)


def schema_of(backend: Backend) -> str:
    return backend.url.rsplit("schema=", 1)[1]


async def test_a_rate_limit_answer_under_a_held_budget_lock_blocks_no_request(
    tmp_path: Path, pg_backend: Backend
) -> None:
    async with open_harness(tmp_path, AUTOJOIN_DATABASE_URL=pg_backend.url) as h:
        worker = h.services.worker
        assert worker is not None
        assert (await h.post(hire(h.portal, 301))).status_code == 200
        h.portal.fail_next("*", "QUERY_LIMIT_EXCEEDED")
        h.portal.hold()  # the worker's first call waits at the portal
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.step)
            while h.portal.state.counters.held_now == 0:  # noqa: ASYNC110 - set by another task
                await anyio.sleep(0.01)
            with BudgetLock(schema_of(pg_backend)) as lock:
                h.portal.release()  # ... and is answered QUERY_LIMIT_EXCEEDED
                for _ in range(500):  # until the bucket's write waits for the lock
                    if lock.waiters() or lock.released.is_set():
                        break
                    await anyio.sleep(0.02)
                assert not lock.released.is_set(), "the event loop stalled until the lock was freed"
                assert lock.waiters() == 1, "the client must be saturating the shared bucket"
                health = await h.client.get("/healthz")
                event = await h.post(hire(h.portal, 302))
                assert not lock.released.is_set(), "the answers had to wait for the lock"
            assert health.status_code == 200
            assert event.json()["status"] == "accepted"
        assert await worker.pause_state() is None
        await h.drain()
        for user in (301, 302):
            assert "added" in {e.outcome for e in await h.services.store.history(user_id=user)}
