"""The `Store` protocol: the one durable boundary between the web tier and the worker.

The contract is docs/architecture.md "Store contract". Additions beyond it, all optional for
callers and implemented by both adapters:

- `migrate(target=None)`: `target` stops at an older version (tests build a v1 database).
- `accept_events(batch, now)`: many events in one transaction (group commit, used by
  `AsyncStore.accept_event`); returns one bool per item, in order; a key repeated inside one
  batch is a duplicate of its first occurrence.
- `settle_many(owner, now, items)`: the worker's whole group of results in one transaction
  (SQLite: one per `SETTLE_CHUNK` results, in order, so its single write lock is never held
  long; each job settles on its own either way).
- `ledger_add`, `ledger_remove`, `ledger`: who was added to which chat by which rule.
- `counts()`: jobs per state (every state present, zero included).
- `jobs_for_event(event_key)`: every job of one event, oldest first, in any state.

Only what production calls is here (tests use the same methods). Every method is one
transaction. Times are unix seconds passed in by the caller; the database
clock is never read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.jobs import AuditEntry, Job, NewJob

LedgerKey = tuple[str, int, int]
"""(rule, chat_id, user_id)"""

LedgerRow = tuple[str, int, int, float]
"""(rule, chat_id, user_id, added_at)"""

EventBatch = Sequence[tuple[str, str, Sequence[NewJob]]]
"""(event_key, event_name, jobs) per accepted event."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """One job's result for `settle_many`: `state` is done, retry or dead."""

    job_id: int
    state: str
    followups: Sequence[NewJob] = ()
    audit: Sequence[AuditEntry] = ()
    ledger: Sequence[LedgerKey] = ()
    run_after: float = 0.0
    code: str | None = None
    error: str | None = None


class Store(Protocol):
    def migrate(self, target: int | None = None) -> int: ...

    def accept_events(self, batch: EventBatch, now: float) -> list[bool]: ...

    def enqueue(self, jobs: Sequence[NewJob], now: float) -> int: ...

    def claim(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        kinds: Collection[str] | None = None,
        groups: int | None = None,
    ) -> list[Job]: ...

    def extend_lease(self, job_ids: Sequence[int], owner: str, until: float) -> None: ...

    def settle_many(self, owner: str, now: float, items: Sequence[Settlement]) -> list[int]:
        """Settle many jobs in one transaction (retries spend their attempt); returns lost ids."""
        ...

    def release(self, job_ids: Sequence[int], owner: str, now: float) -> None: ...

    def jobs(self, states: Collection[str] | None = None, limit: int = 100) -> list[Job]: ...

    def jobs_for_event(self, event_key: str) -> list[Job]:
        """Every job stored for one event, oldest first (a bot reply reads its adds' progress)."""
        ...

    def counts(self) -> dict[str, int]: ...

    def revive(self, job_ids: Sequence[int] | None, now: float) -> int: ...

    def history(
        self,
        user_id: int | None = None,
        chat_id: int | None = None,
        limit: int = 50,
        event_key: str | None = None,
    ) -> list[AuditEntry]: ...

    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str | None, now: float) -> None: ...

    def update_state(
        self, key: str, fn: Callable[[str | None], str | None], now: float
    ) -> str | None:
        """Atomic read-modify-write of one key across processes; `fn` may run again."""
        ...

    def ledger_add(self, entries: Sequence[LedgerKey], now: float) -> int: ...

    def ledger_remove(self, rule: str, chat_id: int, user_id: int) -> bool: ...

    def ledger(self, chat_id: int | None = None) -> list[LedgerRow]: ...

    def prune(
        self,
        now: float,
        done_jobs_before: float | None,
        events_before: float | None,
        audit_before: float | None,
    ) -> dict[str, int]: ...

    def close(self) -> None: ...
