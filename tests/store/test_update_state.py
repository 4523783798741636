"""`update_state` is an atomic read-modify-write, even across connections and processes."""

from __future__ import annotations

import threading

import pytest

from bot.rest.bucket import LeakyBucket, StoreBucketState
from bot.store.aio import AsyncStore
from bot.store.base import Store
from tests.fakes import FakeClock
from tests.store.conftest import Backend


def _increment(raw: str | None) -> str:
    return str(int(raw or "0") + 1)


def test_update_state_reads_modifies_and_writes(store: Store) -> None:
    assert store.update_state("counter", _increment, 1.0) == "1"
    assert store.update_state("counter", _increment, 2.0) == "2"
    assert store.get_state("counter") == "2"
    assert store.update_state("counter", lambda raw: None, 3.0) is None
    assert store.get_state("counter") is None


def test_concurrent_updates_from_two_connections_lose_nothing(backend: Backend) -> None:
    stores = [backend.open(), backend.open()]
    for s in stores:
        s.migrate()

    def work(s: Store) -> None:
        for _ in range(100):
            s.update_state("counter", _increment, 1.0)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert stores[0].get_state("counter") == "200"


@pytest.mark.anyio
async def test_two_buckets_on_one_store_share_the_budget(backend: Backend) -> None:
    """Two processes' buckets together still send at the portal's rate, not twice it."""
    clock = FakeClock()
    stores = [AsyncStore(backend.open()), AsyncStore(backend.open())]
    try:
        stores[0].store.migrate()
        buckets = [
            LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep, state=StoreBucketState(s, clock))
            for s in stores
        ]
        await buckets[0].state.update(lambda _: (0.0, clock()))  # empty, to measure the burst
        waits = [await buckets[i % 2].reserve() for i in range(60)]
        assert sum(1 for w in waits if w == 0) == int(buckets[0].limit)
        # The 60th request waits for 60 - limit requests to drain at 2/s.
        assert waits[-1] == (60 - buckets[0].limit) / 2.0
        assert await buckets[1].level() == 60.0
    finally:
        for s in stores:
            await s.close()
