"""AsyncStore: group commit on the acknowledgement path, and the async façade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from bot.jobs import ADD_TO_CHAT, DONE, AuditEntry, NewJob
from bot.store.aio import AsyncStore
from bot.store.base import EventBatch, Settlement, Store

pytestmark = pytest.mark.anyio
T0 = 3_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def job(key: str, **payload: Any) -> NewJob:
    return NewJob(ADD_TO_CHAT, payload or {"k": key}, dedupe_key=key)


class FakeCountingStore:
    """A real store that counts the `accept_events` transactions it is asked for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def accept_events(self, batch: EventBatch, now: float) -> list[bool]:
        self.batches.append(len(batch))
        return self.store.accept_events(batch, now)


async def test_concurrent_accepts_share_transactions(store: Store) -> None:
    counting = FakeCountingStore(store)
    astore = AsyncStore(counting)
    keys = [f"ev{i % 180}" for i in range(200)]  # 20 keys arrive twice
    results: dict[int, bool] = {}

    async def accept(i: int) -> None:
        results[i] = await astore.accept_event(keys[i], "E", [job(f"j{keys[i]}")], T0 + i)

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(accept, i)
    commits = len(counting.batches)
    assert sum(counting.batches) == 200
    assert len(results) == 200
    assert sum(results.values()) == 180
    for key in set(keys):
        assert sorted(results[i] for i in range(200) if keys[i] == key)[-1] is True
    assert (await astore.counts())["pending"] == 180
    assert commits < 20, f"{commits} transactions for 200 events: no group commit"


async def test_a_duplicate_inside_one_group_gets_false(store: Store) -> None:
    astore = AsyncStore(store)
    results: list[bool] = []

    async def accept() -> None:
        results.append(await astore.accept_event("same", "E", [job("x")], T0))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(accept)
    assert sorted(results) == [False, False, False, False, True]
    assert len(await astore.jobs()) == 1


async def test_one_bad_event_fails_only_its_own_caller(store: Store) -> None:
    astore = AsyncStore(store)
    outcomes: dict[str, object] = {}

    async def accept(key: str, payload: dict[str, object]) -> None:
        try:
            outcomes[key] = await astore.accept_event(key, "E", [NewJob("k", payload)], T0)
        except TypeError as exc:
            outcomes[key] = exc

    async with anyio.create_task_group() as tg:
        for i in range(30):
            payload: dict[str, object] = {"bad": object()} if i == 7 else {"i": i}
            tg.start_soon(accept, f"ev{i}", payload)
    assert isinstance(outcomes.pop("ev7"), TypeError)
    assert set(outcomes.values()) == {True}
    assert len(await astore.jobs()) == 29
    assert await astore.accept_event("ev7", "E", [], T0) is True  # nothing of it was stored


async def test_a_cancelled_caller_does_not_disturb_the_others(store: Store) -> None:
    astore = AsyncStore(store)
    done: list[bool] = []

    async def accept(key: str) -> None:
        done.append(await astore.accept_event(key, "E", [], T0))

    async with anyio.create_task_group() as outer:
        for i in range(20):
            outer.start_soon(accept, f"a{i}")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await astore.accept_event("cancelled", "E", [], T0)
    assert done == [True] * 20
    assert store.accept_events([("cancelled", "E", []), ("a1", "E", [])], T0) in (
        [True, False],
        [False, False],  # a cancelled caller's event may still have been committed
    )


async def test_the_async_facade_reaches_every_method(store: Store) -> None:
    astore = AsyncStore(store)
    assert await astore.enqueue([job("a"), job("b"), job("c")], T0) == 3
    a, b, c = await astore.claim("w", T0, 60, 3)
    await astore.extend_lease([a.id], "w", T0 + 600)
    entry = AuditEntry(T0, None, "r", 1, 2, False, "added")
    settled = [
        Settlement(a.id, "done", [job("d")], [entry], [("r", 1, 2)]),
        Settlement(b.id, "retry", run_after=T0 + 5, code="X", error="x"),
        Settlement(c.id, "dead", audit=[entry], code="Y", error="y"),
    ]
    assert await astore.settle_many("w", T0, settled) == []
    assert await astore.settle_many("w", T0, [Settlement(c.id, "done")]) == [c.id]
    assert [j.id for j in await astore.jobs_for_event("none")] == []
    assert await astore.revive([c.id], T0) == 1
    claimed = await astore.claim("w", T0 + 5, 60, 10, kinds=[ADD_TO_CHAT])
    await astore.release([j.id for j in claimed], "w", T0 + 5)
    assert (await astore.counts())[DONE] == 1
    assert len(await astore.history(user_id=2, chat_id=1, limit=5)) == 2
    await astore.set_state("k", "v", T0)
    assert await astore.get_state("k") == "v"
    assert await astore.ledger_add([("r", 3, 4)], T0) == 1
    assert await astore.ledger_remove("r", 3, 4) is True
    assert await astore.ledger(1) == [("r", 1, 2, T0)]
    assert await astore.update_state("n", lambda raw: (raw or "") + "1", T0) == "1"
    pruned = await astore.prune(T0 + 1, T0 + 1, None, None)
    assert pruned["jobs"] == 1
    await astore.close()


async def test_a_leader_gathers_the_callers_already_under_way(store: Store) -> None:
    counting = FakeCountingStore(store)
    astore = AsyncStore(counting)

    async def accept(i: int) -> None:
        await astore.accept_event(f"ev{i}", "E", [job(f"j{i}")], T0)

    async with anyio.create_task_group() as tg:
        for i in range(32):
            tg.start_soon(accept, i)  # all runnable in the same turn of the loop
    # Without the leader's turns the first caller commits alone and the rest follow.
    assert counting.batches == [32]


async def test_the_sink_hears_each_group_once_before_its_callers_return(store: Store) -> None:
    astore = AsyncStore(store)
    heard: list[list[tuple[object, bool]]] = []
    returned: list[tuple[str, int]] = []

    def sink(group: Sequence[tuple[object, bool]]) -> None:
        heard.append(list(group))

    async def accept(key: str) -> None:
        await astore.accept_event(key, "E", [], T0, sink=sink, tag=key)
        returned.append((key, len(heard)))

    async with anyio.create_task_group() as tg:
        for key in ("a", "b", "a", "c"):
            tg.start_soon(accept, key)
    assert heard == [[("a", True), ("b", True), ("a", False), ("c", True)]]
    assert all(n == 1 for _, n in returned)
