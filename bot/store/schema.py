"""Versioned migrations, shared by SQLite and PostgreSQL.

Each step is a list of statement templates; `statements(version, dialect)` fills in the few
words the dialects disagree on (`{pk}`, `{real}`, `{bigint}`). Steps are append-only: a
released step is never edited, a change is a new step. `schema_version` holds one row per
applied version; the current version is the highest.

v1 is the core slice (events, jobs, key/value state). v2 adds `jobs.group_key`, the indexes
the claim and prune queries use, the `dedupe_keys` table (so job dedupe keys outlive pruned
done jobs, for as long as event keys are kept), and the `audit` and `ledger` tables. v3 indexes
`jobs.event_key`: every bot reply looks up its request's adds with `jobs_for_event`, which was
a full scan of `jobs`. (`audit.event_key` stays unindexed: nothing reads the audit by event.)
"""

from __future__ import annotations

from typing import Final, Literal

Dialect = Literal["sqlite", "postgres"]

_WORDS: Final[dict[Dialect, dict[str, str]]] = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "bigint": "INTEGER"},
    "postgres": {"pk": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION", "bigint": "BIGINT"},
}

BOOTSTRAP: Final = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)"

V1: Final = (
    """CREATE TABLE events (
        event_key TEXT PRIMARY KEY,
        event_name TEXT NOT NULL,
        received_at {real} NOT NULL
    )""",
    """CREATE TABLE jobs (
        id {pk},
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        run_after {real} NOT NULL,
        dedupe_key TEXT UNIQUE,
        event_key TEXT,
        lease_owner TEXT,
        lease_until {real},
        last_code TEXT,
        last_error TEXT,
        created_at {real} NOT NULL,
        updated_at {real} NOT NULL
    )""",
    """CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at {real} NOT NULL
    )""",
)

V2: Final = (
    "ALTER TABLE jobs ADD COLUMN group_key TEXT",
    "CREATE INDEX jobs_due ON jobs (state, run_after, id)",
    "CREATE INDEX events_received ON events (received_at)",
    """CREATE TABLE dedupe_keys (
        dedupe_key TEXT PRIMARY KEY,
        created_at {real} NOT NULL
    )""",
    # v1 kept dedupe keys only on jobs; copy them so they survive pruning of done jobs.
    """INSERT INTO dedupe_keys (dedupe_key, created_at)
        SELECT dedupe_key, created_at FROM jobs WHERE dedupe_key IS NOT NULL""",
    "CREATE INDEX dedupe_keys_created ON dedupe_keys (created_at)",
    """CREATE TABLE audit (
        id {pk},
        at {real} NOT NULL,
        event_key TEXT,
        rule TEXT,
        chat_id {bigint} NOT NULL,
        user_id {bigint} NOT NULL,
        hide_history INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        code TEXT,
        detail TEXT,
        job_id {bigint}
    )""",
    "CREATE INDEX audit_at ON audit (at)",
    "CREATE INDEX audit_user ON audit (user_id, at)",
    "CREATE INDEX audit_chat ON audit (chat_id, at)",
    """CREATE TABLE ledger (
        rule TEXT NOT NULL,
        chat_id {bigint} NOT NULL,
        user_id {bigint} NOT NULL,
        added_at {real} NOT NULL,
        PRIMARY KEY (rule, chat_id, user_id)
    )""",
    "CREATE INDEX ledger_chat ON ledger (chat_id, user_id)",
)

V3: Final = ("CREATE INDEX jobs_event ON jobs (event_key)",)

STEPS: Final[tuple[tuple[str, ...], ...]] = (V1, V2, V3)
LATEST: Final = len(STEPS)


def statements(version: int, dialect: Dialect) -> list[str]:
    """The SQL of one step (1-based version) for one dialect."""
    return [template.format(**_WORDS[dialect]) for template in STEPS[version - 1]]
