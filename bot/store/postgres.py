"""PostgreSQL adapter (psycopg 3, one connection per store).

Claims use `FOR UPDATE SKIP LOCKED`, so any number of workers on any hosts share the queue.
`synchronous_commit=on`: a commit has reached the WAL on disk before the 2xx. A broken
connection is reopened once per call before the call fails with `StoreError`. Re-running a
transaction whose COMMIT reached the server but whose answer was lost is safe by contract:
`accept_events` then answers False, a settle reports the job's lease lost. The DSN's password never
appears in an error or repr.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import sql as pgsql

from bot.errors import StoreError
from bot.store import sql as q
from bot.store.core import SQLStore
from bot.store.urls import mask_url, scrub

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


class _PgTx:
    dialect = "postgres"

    def __init__(self, cur: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self._cur = cur

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[q.Row]:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cur.fetchall()) if self._cur.description else []

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return self._cur.rowcount


class PostgresStore(SQLStore):
    dialect = "postgres"
    claim_lock = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, schema: str | None = None) -> None:
        super().__init__()
        self._dsn = dsn
        self.schema = schema
        self._lock = threading.Lock()
        self._closed = False
        self._conn: Conn | None = self._connect()

    def __repr__(self) -> str:
        return f"PostgresStore({mask_url(self._dsn)!r}, schema={self.schema!r})"

    def _error(self, what: str, exc: BaseException) -> StoreError:
        """One line: the driver's message (libpq's may span lines) without the password."""
        detail = " ".join(scrub(str(exc), self._dsn).split())
        hint = ""
        if "query parameter" in detail or "invalid connection option" in detail:
            hint = (
                "; autojoin reads ?schema=name itself and passes every other parameter to "
                "libpq (sslmode, connect_timeout, …): fix AUTOJOIN_DATABASE_URL"
            )
        elif what == "cannot connect":
            hint = "; check the host, port, user and database in AUTOJOIN_DATABASE_URL"
        return StoreError(f"PostgreSQL at {self._where()}: {what}: {detail}{hint}")

    def _where(self) -> str:
        """Host and database, never the user or the password (the whole URL is a secret)."""
        parts = urlsplit(self._dsn)
        host = parts.netloc.rpartition("@")[2] or "localhost"
        return f"{host}{parts.path}"

    def _connect(self) -> Conn:
        try:
            conn: Conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc) from None
        try:
            conn.execute("SET synchronous_commit = on")
            if self.schema is not None:
                name = pgsql.Identifier(self.schema)
                # UniqueViolation: another process created it at the same moment.
                with contextlib.suppress(psycopg.errors.UniqueViolation):
                    conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
                conn.execute(pgsql.SQL("SET search_path TO {}").format(name))
        except psycopg.Error as exc:
            conn.close()
            raise self._error("cannot prepare the session", exc) from None
        return conn

    def _migration_lock(self, tx: q.Tx) -> None:
        """A transaction-scoped advisory lock per schema: concurrent starters migrate once."""
        key = zlib.crc32(f"autojoin.migrate:{self.schema or ''}".encode())
        tx.rows("SELECT pg_advisory_xact_lock(?)", (key,))

    def _key_lock(self, tx: q.Tx, key: str) -> None:
        """An advisory lock also covers a key that has no row yet (FOR UPDATE would not)."""
        lock = zlib.crc32(f"autojoin.kv:{self.schema or ''}:{key}".encode())
        tx.rows("SELECT pg_advisory_xact_lock(?)", (lock,))

    def _atomic(self, fn: Callable[[q.Tx], T], *, write: bool = True) -> T:
        with self._lock:
            try:
                return self._attempt(fn)
            except psycopg.OperationalError:
                pass  # connection lost or transaction aborted by the server: once more
            try:
                return self._attempt(fn)
            except psycopg.OperationalError as exc:
                raise self._error("operation failed", exc) from exc

    def _attempt(self, fn: Callable[[q.Tx], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._reopen()
        conn = self._conn
        if conn is None:
            raise StoreError("the store is closed")
        try:
            with conn.transaction(), conn.cursor() as cur:
                result = fn(_PgTx(cur))
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise self._error("statement failed", exc) from exc
        return result

    def _reopen(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._conn = self._connect()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
