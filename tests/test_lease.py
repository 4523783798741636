"""The pollers' lease, on a real SQLite file: a heartbeat keeps a live holder's short lease
through waits longer than it; a dead holder's runs out on its own; a stopping one drops it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from bot.lease import run_turns, take_lease
from bot.store import AsyncStore, open_store

pytestmark = pytest.mark.anyio
KEY = "test.lease"
LEASE = 0.3  # seconds: the heartbeat renews it every 0.1 s of real time


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    opened = AsyncStore(open_store(f"sqlite:///{tmp_path / 'lease.db'}"))
    yield opened
    await opened.close()


async def test_a_live_holder_keeps_its_lease_through_a_wait_longer_than_the_lease(
    store: AsyncStore,
) -> None:
    turns: list[bool] = []

    async def turn() -> float:
        turns.append(await take_lease(store, KEY, "holder", time.time(), LEASE))
        return 5 * LEASE  # waits far past its lease between turns

    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: run_turns(
                turn,
                anyio.sleep,
                store=store,
                key=KEY,
                owner="holder",
                clock=time.time,
                lease=LEASE,
            )
        )
        await anyio.sleep(3 * LEASE)  # well past the lease, before the holder's next turn
        assert turns == [True]
        assert not await take_lease(store, KEY, "other", time.time(), LEASE)
        group.cancel_scope.cancel()
    # stopped: the lease was dropped on the way out, so another takes it at once
    assert await take_lease(store, KEY, "other", time.time(), LEASE)


async def test_a_dead_holders_lease_runs_out_within_its_length(store: AsyncStore) -> None:
    assert await take_lease(store, KEY, "dead", time.time(), LEASE)  # then no heartbeat
    assert not await take_lease(store, KEY, "other", time.time(), LEASE)
    await anyio.sleep(LEASE + 0.05)
    assert await take_lease(store, KEY, "other", time.time(), LEASE)
