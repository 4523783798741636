"""`AsyncStore`: the store for async code, with group commit on the acknowledgement path.

Every call runs the synchronous store in a worker thread, one call at a time
(`CapacityLimiter(1)`), so a slow fsync never blocks the event loop.

Group commit: `accept_event` appends the event to a pending list. If no group is being
committed, the caller becomes the leader: it lets the loop turn a few times (requests the
loop has already read reach the list meanwhile), then commits everything pending in one
`accept_events` transaction and hands each event its own bool. Otherwise it waits for the
group in flight; every waiter wakes at once (one wake-up each, in one turn of the loop),
those whose event was in that group return, and the first of the rest leads the next group.
While one transaction is being fsynced, the next group accumulates, so throughput follows
the disk's commit rate rather than one fsync per request, and a transaction's fixed cost
(~150 µs of CPU on SQLite, ~270 µs on PostgreSQL, against ~5 µs per event) is paid once per
group. Each caller returns only after its own event committed. If a group transaction
fails, its events are retried one by one so one bad event (or payload) fails only its own
caller. A group's events share one `received_at`: the latest `now` among them (they arrived
within one commit interval).

A caller may pass a `sink`: the leader calls it once per group with the `(tag, fresh)` of
every committed event that named it, before any of them returns, so the caller can log one
line per group instead of one per event.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from bot.jobs import AuditEntry, Job, NewJob
from bot.store.base import EventBatch, LedgerKey, LedgerRow, Settlement, Store

MAX_GROUP = 500
# A leader lets the loop turn this often before it takes its group: requests already read
# from their sockets reach `accept_event` within a few turns and ride along, instead of a
# group of one going first and everyone else waiting for the next commit.
GATHER_TURNS = 3
Sink = Callable[[Sequence[tuple[Any, bool]]], None]


@dataclass(eq=False, slots=True)
class _Pending:
    key: str
    name: str
    jobs: Sequence[NewJob]
    now: float
    sink: Sink | None = None
    tag: Any = None
    done: bool = False
    fresh: bool = False
    error: Exception | None = field(default=None)

    def outcome(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.fresh


class AsyncStore:
    def __init__(self, store: Store, *, max_group: int = MAX_GROUP) -> None:
        self.store = store
        self.max_group = max_group
        self._limiter = anyio.CapacityLimiter(1)
        self._pending: list[_Pending] = []
        self._committed: anyio.Event | None = None  # set when the group in flight is done
        self._closing = anyio.Lock()

    # -- group commit --------------------------------------------------------
    async def accept_event(
        self,
        event_key: str,
        event_name: str,
        jobs: Sequence[NewJob],
        now: float,
        *,
        sink: Sink | None = None,
        tag: Any = None,
    ) -> bool:
        """True once this event and its jobs are committed; False if the key was known."""
        entry = _Pending(event_key, event_name, tuple(jobs), now, sink, tag)
        self._pending.append(entry)
        try:
            while not entry.done:
                committed = self._committed
                if committed is not None:
                    await committed.wait()
                    continue
                committed = self._committed = anyio.Event()
                try:
                    for _ in range(GATHER_TURNS):
                        await anyio.lowlevel.checkpoint()
                    group = self._pending[: self.max_group]
                    del self._pending[: len(group)]
                    # Shielded: once taken, a group is settled even if this caller goes away.
                    with anyio.CancelScope(shield=True):
                        await self._commit_group(group)
                finally:
                    self._committed = None
                    committed.set()
        finally:
            if not entry.done and entry in self._pending:
                self._pending.remove(entry)  # cancelled before any group took it
        return entry.outcome()

    async def _commit_group(self, group: list[_Pending]) -> None:
        batch = [(e.key, e.name, e.jobs) for e in group]
        now = max(e.now for e in group)
        try:
            results = await self._run_batch(batch, now)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                group[0].done = True
                return
            for e in group:
                try:
                    e.fresh = await self._run_batch([(e.key, e.name, e.jobs)], e.now) == [True]
                except Exception as one:
                    e.error = one
                e.done = True
            _report(group)
            return
        for e, fresh in zip(group, results, strict=True):
            e.fresh = fresh
            e.done = True
        _report(group)

    async def _run_batch(self, batch: EventBatch, now: float) -> list[bool]:
        return await anyio.to_thread.run_sync(
            self.store.accept_events, batch, now, limiter=self._limiter
        )

    async def enqueue(self, jobs: Sequence[NewJob], now: float) -> int:
        return await anyio.to_thread.run_sync(self.store.enqueue, jobs, now, limiter=self._limiter)

    async def claim(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        kinds: Collection[str] | None = None,
        groups: int | None = None,
    ) -> list[Job]:
        return await anyio.to_thread.run_sync(
            self.store.claim,
            owner,
            now,
            lease_seconds,
            limit,
            kinds,
            groups,
            limiter=self._limiter,
        )

    async def extend_lease(self, job_ids: Sequence[int], owner: str, until: float) -> None:
        await anyio.to_thread.run_sync(
            self.store.extend_lease, job_ids, owner, until, limiter=self._limiter
        )

    async def release(self, job_ids: Sequence[int], owner: str, now: float) -> None:
        await anyio.to_thread.run_sync(
            self.store.release, job_ids, owner, now, limiter=self._limiter
        )

    async def jobs(self, states: Collection[str] | None = None, limit: int = 100) -> list[Job]:
        return await anyio.to_thread.run_sync(self.store.jobs, states, limit, limiter=self._limiter)

    async def jobs_for_event(self, event_key: str) -> list[Job]:
        return await anyio.to_thread.run_sync(
            self.store.jobs_for_event, event_key, limiter=self._limiter
        )

    async def counts(self) -> dict[str, int]:
        return await anyio.to_thread.run_sync(self.store.counts, limiter=self._limiter)

    async def revive(self, job_ids: Sequence[int] | None, now: float) -> int:
        return await anyio.to_thread.run_sync(
            self.store.revive, job_ids, now, limiter=self._limiter
        )

    async def history(
        self,
        user_id: int | None = None,
        chat_id: int | None = None,
        limit: int = 50,
        event_key: str | None = None,
    ) -> list[AuditEntry]:
        return await anyio.to_thread.run_sync(
            self.store.history, user_id, chat_id, limit, event_key, limiter=self._limiter
        )

    async def get_state(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self.store.get_state, key, limiter=self._limiter)

    async def set_state(self, key: str, value: str | None, now: float) -> None:
        await anyio.to_thread.run_sync(self.store.set_state, key, value, now, limiter=self._limiter)

    async def settle_many(self, owner: str, now: float, items: Sequence[Settlement]) -> list[int]:
        return await anyio.to_thread.run_sync(
            self.store.settle_many, owner, now, items, limiter=self._limiter
        )

    async def update_state(
        self, key: str, fn: Callable[[str | None], str | None], now: float
    ) -> str | None:
        return await anyio.to_thread.run_sync(
            self.store.update_state, key, fn, now, limiter=self._limiter
        )

    async def ledger_add(self, entries: Sequence[LedgerKey], now: float) -> int:
        return await anyio.to_thread.run_sync(
            self.store.ledger_add, entries, now, limiter=self._limiter
        )

    async def ledger_remove(self, rule: str, chat_id: int, user_id: int) -> bool:
        return await anyio.to_thread.run_sync(
            self.store.ledger_remove, rule, chat_id, user_id, limiter=self._limiter
        )

    async def ledger(self, chat_id: int | None = None) -> list[LedgerRow]:
        return await anyio.to_thread.run_sync(self.store.ledger, chat_id, limiter=self._limiter)

    async def prune(
        self,
        now: float,
        done_jobs_before: float | None,
        events_before: float | None,
        audit_before: float | None,
    ) -> dict[str, int]:
        return await anyio.to_thread.run_sync(
            self.store.prune,
            now,
            done_jobs_before,
            events_before,
            audit_before,
            limiter=self._limiter,
        )

    async def close(self) -> None:
        """Close after any group commit in flight has settled."""
        async with self._closing:
            while self._committed is not None:
                await self._committed.wait()
            await anyio.to_thread.run_sync(self.store.close, limiter=self._limiter)


def _report(group: Sequence[_Pending]) -> None:
    """Each sink once, with the events of this group that named it and were committed."""
    reports: dict[Sink, list[tuple[Any, bool]]] = {}
    for e in group:
        if e.sink is not None and e.error is None:
            reports.setdefault(e.sink, []).append((e.tag, e.fresh))
    for sink, items in reports.items():
        sink(items)
