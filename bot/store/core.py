"""`SQLStore`: the contract implemented once over the `Tx` façade of `bot.store.sql`.

Adapters supply `_atomic` (one transaction, with their locking and error mapping),
`_migration_lock` and the dialect; everything else, including every rule of the contract,
lives here so the two backends cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import ClassVar, TypeVar

from bot.errors import StoreError
from bot.jobs import STATES, AuditEntry, Job, NewJob
from bot.store import schema
from bot.store import sql as q
from bot.store.base import EventBatch, LedgerKey, LedgerRow, Settlement

T = TypeVar("T")
log = logging.getLogger("autojoin.store")
_HAS_VERSION_TABLE: dict[schema.Dialect, str] = {
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
    "postgres": "SELECT COUNT(*) FROM (SELECT to_regclass('schema_version') AS t) v "
    "WHERE t IS NOT NULL",
}


class SQLStore:
    dialect: ClassVar[schema.Dialect]
    claim_lock: ClassVar[str] = ""

    # -- adapter hooks -------------------------------------------------------
    def _atomic(self, fn: Callable[[q.Tx], T], *, write: bool = True) -> T:
        raise NotImplementedError

    def _migration_lock(self, tx: q.Tx) -> None:
        """Serialise concurrent migrators (SQLite's BEGIN IMMEDIATE already does)."""

    def _key_lock(self, tx: q.Tx, key: str) -> None:
        """Serialise read-modify-write of one state key (SQLite's BEGIN IMMEDIATE already does)."""

    def close(self) -> None:
        raise NotImplementedError

    # -- migrations ----------------------------------------------------------
    def migrate(self, target: int | None = None) -> int:
        """Apply pending steps, each in its own transaction; return the version reached."""
        goal = schema.LATEST if target is None else target

        def step(version: int) -> Callable[[q.Tx], int]:
            def run(tx: q.Tx) -> int:
                self._migration_lock(tx)
                tx.count(schema.BOOTSTRAP)
                current = int(tx.rows("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
                if current > schema.LATEST:
                    raise StoreError(
                        f"database schema is version {current}, newer than this code"
                        f" (knows up to {schema.LATEST}); upgrade autojoin"
                    )
                if current >= version:
                    return current
                for statement in schema.statements(version, self.dialect):
                    tx.count(statement)
                tx.count("INSERT INTO schema_version (version) VALUES (?)", (version,))
                return version

            return run

        start = reached = self._atomic(step(0))
        for version in range(1, goal + 1):
            reached = max(reached, self._atomic(step(version)))
        if reached > start and start == 0:
            log.info("database schema created (version %d)", reached)
        elif reached > start:
            log.info("database schema migrated from version %d to %d", start, reached)
        return reached

    def version(self) -> int:
        """The schema version in the database, 0 when it has no autojoin tables; changes nothing."""

        def read(tx: q.Tx) -> int:
            if not int(tx.rows(_HAS_VERSION_TABLE[self.dialect])[0][0]):
                return 0
            return int(tx.rows("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

        return self._atomic(read, write=False)

    # -- intake --------------------------------------------------------------
    def accept_events(self, batch: EventBatch, now: float) -> list[bool]:
        now = float(now)

        return self._atomic(lambda tx: q.accept_bulk(tx, batch, now))

    def enqueue(self, jobs: Sequence[NewJob], now: float) -> int:
        return self._atomic(lambda tx: q.insert_jobs(tx, jobs, float(now)))

    # -- leases --------------------------------------------------------------
    def claim(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        kinds: Collection[str] | None = None,
        groups: int | None = None,
    ) -> list[Job]:
        now = float(now)
        shape = claim_shape(now, limit, kinds, groups)
        if shape is None:
            return []
        in_kinds, params = shape
        template = q.CLAIM if groups is None else q.CLAIM_GROUPS
        statement = template.format(kinds=in_kinds, lock=self.claim_lock)
        params = (*params, owner, now + lease_seconds, now)
        rows = self._atomic(lambda tx: tx.rows(statement, params))
        return by_due(rows)

    def extend_lease(self, job_ids: Sequence[int], owner: str, until: float) -> None:
        def run(tx: q.Tx) -> None:
            for ids in q.chunks(job_ids):
                tx.count(q.EXTEND.format(ids=q.marks(len(ids))), (float(until), owner, *ids))

        self._atomic(run)

    def release(self, job_ids: Sequence[int], owner: str, now: float) -> None:
        def run(tx: q.Tx) -> None:
            for ids in q.chunks(job_ids):
                tx.count(q.RELEASE.format(ids=q.marks(len(ids))), (float(now), owner, *ids))

        self._atomic(run)

    def settle_many(self, owner: str, now: float, items: Sequence[Settlement]) -> list[int]:
        """Settle many jobs in one transaction; returns the ids whose lease was lost.

        Completions go in one `UPDATE … IN (…)` per chunk and the follow-ups, audit and
        ledger rows of every settled job in multi-row statements, in `items` order (so the
        first follow-up with a dedupe key wins, as if settled one by one)."""
        now = float(now)

        def run(tx: q.Tx) -> list[int]:
            settled: set[int] = set()
            seen: set[int] = set()
            done: list[int] = []
            for item in items:
                if item.job_id in seen:
                    continue  # settled (or lost) already: a second settle finds no lease
                seen.add(item.job_id)
                if item.state == "done":
                    done.append(item.job_id)
                    continue
                if item.state == "retry":
                    statement = q.RETRY
                    run_after = float(item.run_after)
                    params: tuple[object, ...] = (run_after, item.code, item.error, now)
                    params = (*params, item.job_id, owner)
                else:
                    statement = q.DEAD
                    params = (item.code, item.error, now, item.job_id, owner)
                if tx.count(statement, params) == 1:
                    settled.add(item.job_id)
            for ids in q.chunks(done):
                statement = q.COMPLETE_MANY.format(ids=q.marks(len(ids)))
                settled.update(int(r[0]) for r in tx.rows(statement, (now, owner, *ids)))
            kept: list[Settlement] = []
            lost: list[int] = []
            for item in items:
                if item.job_id in settled:
                    kept.append(item)
                    settled.discard(item.job_id)  # a repeat of the id later is lost
                else:
                    lost.append(item.job_id)
            q.insert_jobs(tx, [job for item in kept for job in item.followups], now)
            q.insert_audit_rows(tx, [r for i in kept for r in q.audit_rows(i.audit, i.job_id)])
            q.insert_ledger(tx, [key for item in kept for key in item.ledger], now)
            return lost

        return self._atomic(run)

    # -- operators -----------------------------------------------------------
    def jobs(self, states: Collection[str] | None = None, limit: int = 100) -> list[Job]:
        where, params = "", list[object]()
        if states is not None:
            if not states:
                return []
            where = f" WHERE state IN ({q.marks(len(states))})"
            params.extend(sorted(states))
        statement = f"SELECT {q.JOB_COLUMNS} FROM jobs{where} ORDER BY id DESC LIMIT ?"
        rows = self._atomic(lambda tx: tx.rows(statement, (*params, int(limit))), write=False)
        return [q.to_job(r) for r in rows]

    def jobs_for_event(self, event_key: str) -> list[Job]:
        statement = f"SELECT {q.JOB_COLUMNS} FROM jobs WHERE event_key = ? ORDER BY id"
        rows = self._atomic(lambda tx: tx.rows(statement, (event_key,)), write=False)
        return [q.to_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        statement = "SELECT state, COUNT(*) FROM jobs GROUP BY state"
        rows = self._atomic(lambda tx: tx.rows(statement), write=False)
        return dict.fromkeys(STATES, 0) | {str(s): int(n) for s, n in rows}

    def revive(self, job_ids: Sequence[int] | None, now: float) -> int:
        """Dead jobs (and, named by id, retrying ones) start over: due now, zero attempts."""
        now = float(now)

        def run(tx: q.Tx) -> int:
            if job_ids is None:
                return tx.count(q.REVIVE_ALL, (now, now))
            return sum(
                tx.count(q.REVIVE_IDS.format(ids=q.marks(len(ids))), (now, now, *ids))
                for ids in q.chunks(job_ids)
            )

        return self._atomic(run)

    def history(
        self,
        user_id: int | None = None,
        chat_id: int | None = None,
        limit: int = 50,
        event_key: str | None = None,
    ) -> list[AuditEntry]:
        where, params = [], list[object]()
        for column, value in (("user_id", user_id), ("chat_id", chat_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(int(value))
        if event_key is not None:
            where.append("event_key = ?")
            params.append(event_key)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        statement = f"SELECT {q.AUDIT_COLUMNS} FROM audit{clause} ORDER BY at DESC, id DESC LIMIT ?"
        rows = self._atomic(lambda tx: tx.rows(statement, (*params, int(limit))), write=False)
        return [q.to_audit(r) for r in rows]

    def get_state(self, key: str) -> str | None:
        statement = "SELECT value FROM kv WHERE key = ?"
        rows = self._atomic(lambda tx: tx.rows(statement, (key,)), write=False)
        return str(rows[0][0]) if rows else None

    def set_state(self, key: str, value: str | None, now: float) -> None:
        if value is None:
            self._atomic(lambda tx: tx.count("DELETE FROM kv WHERE key = ?", (key,)))
        else:
            self._atomic(lambda tx: tx.count(q.UPSERT_STATE, (key, value, float(now))))

    def update_state(
        self, key: str, fn: Callable[[str | None], str | None], now: float
    ) -> str | None:
        """Atomic read-modify-write of one key, across processes (shared rate budgets)."""

        def run(tx: q.Tx) -> str | None:
            self._key_lock(tx, key)
            rows = tx.rows("SELECT value FROM kv WHERE key = ?", (key,))
            value = fn(str(rows[0][0]) if rows else None)
            if value is None:
                tx.count("DELETE FROM kv WHERE key = ?", (key,))
            else:
                tx.count(q.UPSERT_STATE, (key, value, float(now)))
            return value

        return self._atomic(run)

    # -- ledger --------------------------------------------------------------
    def ledger_add(self, entries: Sequence[LedgerKey], now: float) -> int:
        """Record (rule, chat, user) additions; an existing row keeps its first added_at."""
        return self._atomic(lambda tx: q.insert_ledger(tx, entries, float(now)))

    def ledger_remove(self, rule: str, chat_id: int, user_id: int) -> bool:
        statement = "DELETE FROM ledger WHERE rule = ? AND chat_id = ? AND user_id = ?"
        return self._atomic(lambda tx: tx.count(statement, (rule, int(chat_id), int(user_id)))) > 0

    def ledger(self, chat_id: int | None = None) -> list[LedgerRow]:
        where, params = ("", ()) if chat_id is None else (" WHERE chat_id = ?", (int(chat_id),))
        statement = (
            f"SELECT rule, chat_id, user_id, added_at FROM ledger{where}"
            " ORDER BY chat_id, user_id, rule"
        )
        rows = self._atomic(lambda tx: tx.rows(statement, params), write=False)
        return [(str(r), int(c), int(u), float(a)) for r, c, u, a in rows]

    # -- retention -----------------------------------------------------------
    def prune(
        self,
        now: float,
        done_jobs_before: float | None,
        events_before: float | None,
        audit_before: float | None,
    ) -> dict[str, int]:
        """Delete old rows; None keeps that kind. Cutoffs are absolute, `now` is not needed.

        Job dedupe keys live in `dedupe_keys` with the same lifetime as event keys, so a
        pruned done job still blocks its duplicate until its event key could repeat anyway.
        """
        plan = (
            ("jobs", "DELETE FROM jobs WHERE state = 'done' AND updated_at < ?", done_jobs_before),
            ("events", "DELETE FROM events WHERE received_at < ?", events_before),
            ("dedupe_keys", "DELETE FROM dedupe_keys WHERE created_at < ?", events_before),
            ("audit", "DELETE FROM audit WHERE at < ?", audit_before),
        )

        def run(tx: q.Tx) -> dict[str, int]:
            return {
                name: 0 if cutoff is None else tx.count(statement, (float(cutoff),))
                for name, statement, cutoff in plan
            }

        return self._atomic(run)


def claim_shape(
    now: float, limit: int, kinds: Collection[str] | None, groups: int | None
) -> tuple[str, tuple[object, ...]] | None:
    """A claim's `{kinds}` clause and the parameters of its picking part (`PICK`/`CLAIM`, or
    the `_GROUPS` forms); None when it can pick nothing."""
    if limit <= 0 or (kinds is not None and not kinds) or (groups is not None and groups <= 0):
        return None
    if isinstance(kinds, str):
        kinds = (kinds,)  # a bare kind, not its letters
    kind_list = sorted(kinds) if kinds is not None else []
    in_kinds = f" AND kind IN ({q.marks(len(kind_list))})" if kind_list else ""
    due = (now, now, *kind_list)
    if groups is None:
        return in_kinds, (*due, int(limit))
    return in_kinds, (*due, int(groups), *due, int(limit))


def by_due(rows: Sequence[q.Row]) -> list[Job]:
    return sorted((q.to_job(r) for r in rows), key=lambda j: (j.run_after, j.id))
