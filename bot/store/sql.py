"""SQL both adapters share: the transaction façade, statements and row conversion.

Statements use `?` placeholders; the PostgreSQL adapter rewrites them to `%s`, so no statement
here may contain a literal `?` or `%`. Every value travels as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Final, Protocol

from bot.jobs import AuditEntry, Job, NewJob
from bot.store import bulk

Row = bulk.Row


CHUNK: Final = 500  # ids per IN (...) list; far below SQLite's variable limit


class Tx(Protocol):
    """One open transaction; adapters implement it over their own cursor."""

    dialect: str  # "sqlite" or "postgres": how `bulk` shapes a multi-row insert

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a write statement and return how many rows it changed."""
        ...


JOB_COLUMNS: Final = (
    "id, kind, payload, state, attempts, run_after, created_at, updated_at, dedupe_key,"
    " event_key, group_key, lease_owner, lease_until, last_code, last_error"
)

AUDIT_COLUMNS: Final = (
    "at, event_key, rule, chat_id, user_id, hide_history, outcome, code, detail, job_id"
)

DUE: Final = "((state = 'pending' AND run_after <= ?) OR (state = 'running' AND lease_until < ?))"

# {kinds} is "" or " AND kind IN (?, ...)"; {lock} is "" (SQLite) or " FOR UPDATE SKIP LOCKED".
_ORDER: Final = " ORDER BY run_after, id LIMIT ?"
_TAKE: Final = (
    " UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?,"
    " attempts = attempts + 1, updated_at = ?"
)
_FIRST: Final = (
    "first AS (SELECT COALESCE(group_key, '') AS g FROM jobs WHERE " + DUE + "{kinds}"
    " GROUP BY COALESCE(group_key, '') ORDER BY MIN(run_after), MIN(id) LIMIT ?)"
)
_IN_FIRST: Final = " AND COALESCE(group_key, '') IN (SELECT g FROM first)"

CLAIM: Final = (
    "WITH picked AS (SELECT id FROM jobs WHERE "
    + DUE
    + "{kinds}"
    + _ORDER
    + "{lock})"
    + _TAKE
    + " WHERE id IN (SELECT id FROM picked) RETURNING "
    + JOB_COLUMNS
)

# The same, limited to the due jobs of the first `groups` groups (oldest first): a claim that
# is one `batch` request's worth of chats, with every due person of each. NULL is one group.
CLAIM_GROUPS: Final = (
    "WITH "
    + _FIRST
    + ", picked AS (SELECT id FROM jobs WHERE "
    + DUE
    + "{kinds}"
    + _IN_FIRST
    + _ORDER
    + "{lock})"
    + _TAKE
    + " WHERE id IN (SELECT id FROM picked) RETURNING "
    + JOB_COLUMNS
)

# A claim in two steps (SQLite): pick the ids in a read transaction, then take them in short
# write transactions; TAKE checks again that each is still due (another may have taken it).
PICK: Final = "SELECT id FROM jobs WHERE " + DUE + "{kinds}" + _ORDER
PICK_GROUPS: Final = (
    "WITH " + _FIRST + " SELECT id FROM jobs WHERE " + DUE + "{kinds}" + _IN_FIRST + _ORDER
)
TAKE: Final = _TAKE + " WHERE id IN ({ids}) AND " + DUE + " RETURNING " + JOB_COLUMNS

# Settling a job: only the lease holder may, so a job taken over after a lease expired
# cannot be settled twice. `settle_many` reports 0 changed rows as a lost lease.
SETTLE_WHERE: Final = " WHERE id = ? AND state = 'running' AND lease_owner = ?"
COMPLETE: Final = (
    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ?"
    + SETTLE_WHERE
)
COMPLETE_MANY: Final = (
    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ?"
    " WHERE state = 'running' AND lease_owner = ? AND id IN ({ids}) RETURNING id"
)
RETRY: Final = (
    "UPDATE jobs SET state = 'pending', run_after = ?, last_code = ?, last_error = ?,"
    " lease_owner = NULL, lease_until = NULL, updated_at = ?" + SETTLE_WHERE
)
DEAD: Final = (
    "UPDATE jobs SET state = 'dead', last_code = ?, last_error = ?,"
    " lease_owner = NULL, lease_until = NULL, updated_at = ?" + SETTLE_WHERE
)
RELEASE: Final = (
    "UPDATE jobs SET state = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1"
    " ELSE 0 END, lease_owner = NULL, lease_until = NULL, updated_at = ?"
    " WHERE state = 'running' AND lease_owner = ? AND id IN ({ids})"
)
EXTEND: Final = (
    "UPDATE jobs SET lease_until = ? WHERE state = 'running' AND lease_owner = ? AND id IN ({ids})"
)
REVIVE: Final = (
    "UPDATE jobs SET state = 'pending', run_after = ?, attempts = 0, last_code = NULL,"
    " last_error = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE "
)
REVIVE_ALL: Final = REVIVE + "state = 'dead'"
REVIVE_IDS: Final = (
    REVIVE + "id IN ({ids}) AND (state = 'dead' OR (state = 'pending' AND last_code IS NOT NULL))"
)
UPSERT_STATE: Final = (
    "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


def marks(n: int) -> str:
    """`?, ?, ?` for an IN list of n values (n >= 1)."""
    return ", ".join("?" * n)


def chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield [int(i) for i in ids[start : start + CHUNK]]


# One encoder for every payload: `json.dumps` with options builds a new one per call.
_PAYLOAD = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def dump_payload(job: NewJob) -> str:
    payload = job.payload
    return _PAYLOAD(payload if type(payload) is dict else dict(payload))


EVENTS: Final = bulk.Bulk(
    "events",
    (("event_key", "text"), ("event_name", "text"), ("received_at", "float8")),
    tail=" ON CONFLICT DO NOTHING RETURNING event_key",
)
DEDUPE_KEYS: Final = bulk.Bulk(
    "dedupe_keys",
    (("dedupe_key", "text"), ("created_at", "float8")),
    tail=" ON CONFLICT DO NOTHING RETURNING dedupe_key",
)
JOBS: Final = bulk.Bulk(
    "jobs",
    (
        ("kind", "text"),
        ("payload", "text"),
        ("run_after", "float8"),
        ("dedupe_key", "text"),
        ("event_key", "text"),
        ("group_key", "text"),
        ("created_at", "float8"),
        ("updated_at", "float8"),
    ),
    fixed=(("state", "'pending'"), ("attempts", "0")),
    tail=" ON CONFLICT DO NOTHING",
)
AUDIT: Final = bulk.Bulk(
    "audit",
    (
        ("at", "float8"),
        ("event_key", "text"),
        ("rule", "text"),
        ("chat_id", "int8"),
        ("user_id", "int8"),
        ("hide_history", "int4"),
        ("outcome", "text"),
        ("code", "text"),
        ("detail", "text"),
        ("job_id", "int8"),
    ),
)
LEDGER: Final = bulk.Bulk(
    "ledger",
    (("rule", "text"), ("chat_id", "int8"), ("user_id", "int8"), ("added_at", "float8")),
    tail=" ON CONFLICT DO NOTHING",
)


def insert_jobs(tx: Tx, jobs: Sequence[NewJob], now: float) -> int:
    """Insert jobs, skipping any whose dedupe key was ever stored (until pruned) or appears
    earlier in `jobs`: two multi-row statements instead of two round trips per job."""
    if not jobs:
        return 0
    payloads = [dump_payload(job) for job in jobs]  # an unencodable payload fails the call
    keys = [(j.dedupe_key, now) for j in jobs if j.dedupe_key is not None]
    allowed = {str(r[0]) for r in bulk.insert(tx, DEDUPE_KEYS, keys)[1]}
    rows: list[Row] = []
    for job, payload in zip(jobs, payloads, strict=True):
        if job.dedupe_key is not None:
            if job.dedupe_key not in allowed:
                continue
            allowed.discard(job.dedupe_key)  # a repeat later in `jobs` is skipped
        # New jobs are due no earlier than now, so "oldest first" means first enqueued.
        run_after = max(float(job.run_after), now)
        row = (job.kind, payload, run_after, job.dedupe_key, job.event_key, job.group, now, now)
        rows.append(row)
    return bulk.insert(tx, JOBS, rows)[0]


def accept_bulk(
    tx: Tx, batch: Sequence[tuple[str, str, Sequence[NewJob]]], now: float
) -> list[bool]:
    """A group of events in a few multi-row statements instead of one round trip per row.

    The first occurrence of a key in the group (or in the table, ever) wins; jobs of the
    winners go in by `insert_jobs`.
    """
    keys = [(key, name, now) for key, name, _ in batch]
    inserted = {str(r[0]) for r in bulk.insert(tx, EVENTS, keys)[1]}
    fresh: list[bool] = []
    jobs: list[NewJob] = []
    for key, _, event_jobs in batch:
        new = key in inserted
        inserted.discard(key)  # a repeat of the key later in the group is a duplicate
        fresh.append(new)
        if new:
            jobs.extend(event_jobs)
    insert_jobs(tx, jobs, now)
    return fresh


def audit_rows(entries: Sequence[AuditEntry], job_id: int | None = None) -> list[Row]:
    """Audit rows; an entry without a job id gets the id of the job being settled."""
    return [
        (
            e.at,
            e.event_key,
            e.rule,
            e.chat_id,
            e.user_id,
            int(e.hide_history),
            e.outcome,
            e.code,
            e.detail,
            e.job_id if e.job_id is not None else job_id,
        )
        for e in entries
    ]


def insert_audit_rows(tx: Tx, rows: Sequence[Row]) -> None:
    bulk.insert(tx, AUDIT, rows)


def insert_audit(tx: Tx, entries: Sequence[AuditEntry], job_id: int | None = None) -> None:
    insert_audit_rows(tx, audit_rows(entries, job_id))


def insert_ledger(tx: Tx, entries: Sequence[tuple[str, int, int]], now: float) -> int:
    rows = [(rule, int(chat), int(user), now) for rule, chat, user in entries]
    return bulk.insert(tx, LEDGER, rows)[0]


def to_job(row: Row) -> Job:
    return Job(
        id=int(row[0]),
        kind=row[1],
        payload=json.loads(row[2]),
        state=row[3],
        attempts=int(row[4]),
        run_after=float(row[5]),
        created_at=float(row[6]),
        updated_at=float(row[7]),
        dedupe_key=row[8],
        event_key=row[9],
        group=row[10],
        lease_owner=row[11],
        lease_until=None if row[12] is None else float(row[12]),
        last_code=row[13],
        last_error=row[14],
    )


def to_audit(row: Row) -> AuditEntry:
    return AuditEntry(
        at=float(row[0]),
        event_key=row[1],
        rule=row[2],
        chat_id=int(row[3]),
        user_id=int(row[4]),
        hide_history=bool(row[5]),
        outcome=row[6],
        code=row[7],
        detail=row[8],
        job_id=None if row[9] is None else int(row[9]),
    )
