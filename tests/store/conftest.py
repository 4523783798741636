"""Store fixtures: every contract test runs on a SQLite file and on the real PostgreSQL server.

PostgreSQL tests are never skipped: an unreachable server fails them with the DSN (masked) and
the fix. Each PostgreSQL test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from bench.procs import POSTGRES_DSN, drop_schema
from bot.jobs import ADD_TO_CHAT, AuditEntry, NewJob
from bot.store import mask_url
from bot.store.base import LedgerKey, Settlement, Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore

PG_DSN = POSTGRES_DSN
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Backend:
    """One database; `open()` gives another store object (connection) on it, unmigrated."""

    name: str
    url: str
    opener: Callable[[], Store]
    raw: Callable[[str, Sequence[object]], list[tuple[object, ...]]]
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self.opener()
        self.opened.append(store)
        return store

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run SQL on a separate connection, bypassing the store (`?` placeholders)."""
        return self.raw(sql, params)


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    problem = ""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        problem = str(exc)
    if problem:
        pytest.fail(
            f"PostgreSQL test server unreachable at {mask_url(PG_DSN)}: {problem}\n"
            "Start it (scripts/test does) or point AUTOJOIN_TEST_POSTGRES at one.",
            pytrace=False,
        )
    return PG_DSN


def _sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "store.db"

    def raw(sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return list(conn.execute(sql, tuple(params)).fetchall())
        finally:
            conn.close()

    return Backend("sqlite", f"sqlite:///{path}", lambda: SQLiteStore(path), raw)


def _pg_backend(dsn: str, schema: str) -> Backend:
    def raw(sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(schema)))
            cur = conn.execute(sql.replace("?", "%s"), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    url = f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    return Backend("postgres", url, lambda: PostgresStore(dsn, schema=schema), raw)


@contextmanager
def _database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    schema: str | None = None
    if kind == "sqlite":
        db = _sqlite_backend(tmp_path)
    else:
        dsn: str = request.getfixturevalue("pg_dsn")
        schema = f"autojoin_test_{uuid.uuid4().hex[:12]}"
        db = _pg_backend(dsn, schema)
    try:
        yield db
    finally:
        for store in db.opened:
            store.close()
        if schema is not None:
            drop_schema(PG_DSN, schema)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with _database(request.param, request, tmp_path) as db:
        yield db


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """PostgreSQL only (mark the test `postgres`), in its own schema."""
    with _database("postgres", request, tmp_path) as db:
        yield db


@pytest.fixture
def store(backend: Backend) -> Store:
    """A store at the latest schema version."""
    opened = backend.open()
    opened.migrate()
    return opened


# -- helpers shared by the contract tests ------------------------------------
T0 = 1_000_000.0


def job(key: str | None = None, kind: str = ADD_TO_CHAT, **payload: Any) -> NewJob:
    return NewJob(kind, payload or {"chat_id": 1, "user_id": 2}, dedupe_key=key)


def audit(at: float, chat_id: int, user_id: int, outcome: str = "added") -> AuditEntry:
    return AuditEntry(at, "ev", "rule-a", chat_id, user_id, False, outcome)


def states(store: Store) -> dict[str, int]:
    return {k: v for k, v in store.counts().items() if v}


def accept(store: Store, key: str, jobs: Sequence[NewJob], now: float, name: str = "E") -> bool:
    """One event through `accept_events`, the way `AsyncStore.accept_event` stores it."""
    [fresh] = store.accept_events([(key, name, jobs)], now)
    return fresh


def done(
    job_id: int,
    followups: Sequence[NewJob] = (),
    audit: Sequence[AuditEntry] = (),
    ledger: Sequence[LedgerKey] = (),
) -> Settlement:
    return Settlement(job_id, "done", followups=followups, audit=audit, ledger=ledger)


def retry(
    job_id: int, run_after: float, code: str, error: str, audit: Sequence[AuditEntry] = ()
) -> Settlement:
    return Settlement(job_id, "retry", audit=audit, run_after=run_after, code=code, error=error)


def dead(job_id: int, code: str, error: str, audit: Sequence[AuditEntry] = ()) -> Settlement:
    return Settlement(job_id, "dead", audit=audit, code=code, error=error)
