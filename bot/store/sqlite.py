"""SQLite adapter: one file, shared by `serve` and `worker` processes on one host.

Durability before the 2xx: WAL with `synchronous=FULL`. Writers serialise with
`BEGIN IMMEDIATE` (taking the write lock up front, so claims never interleave) and wait up to
`BUSY_TIMEOUT` for each other. The file holds personal data, so it is created 0600.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Final, TypeVar

from bot.errors import StoreError
from bot.jobs import Job
from bot.store import sql as q
from bot.store.base import Settlement
from bot.store.core import SQLStore, by_due, claim_shape

T = TypeVar("T")
BUSY_TIMEOUT: Final = 10.0  # seconds
URGENT_POLL: Final = 0.0005  # seconds between an urgent connection's tries for the lock
# A settlement commits at most this many results per transaction and then leaves the write
# lock free for two of the urgent connection's polls: the acknowledgement path waits behind
# a few milliseconds of the worker's writes, not behind a whole step's (~25 ms for 1,500).
SETTLE_CHUNK: Final = 128
# A claim picks its ids in a read transaction (no lock: scanning a backlog of 20,000 due jobs
# took ~40 ms inside one) and takes them this many at a time.
TAKE_CHUNK: Final = 256
PICK_TRIES: Final = 5  # another worker took all that was picked: pick again
MEMORY: Final = ":memory:"


class _SQLiteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[q.Row]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount


def _let_others_write() -> None:
    """Between two of a patient connection's write transactions: SQLite's lock has no queue,
    so without a pause the next `BEGIN IMMEDIATE` would win against a polling acknowledgement."""
    time.sleep(2 * URGENT_POLL)


def _create_private(path: str) -> None:
    """Create the database file 0600 before SQLite does (it would honour the umask)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        folder = os.path.dirname(os.path.abspath(path))
        raise StoreError(
            f"AUTOJOIN_DATABASE_URL: cannot create the SQLite database {path} "
            f"({exc.strerror}); create {folder} and let this user write to it, or point "
            "AUTOJOIN_DATABASE_URL elsewhere"
        ) from exc
    os.close(fd)
    os.chmod(path, 0o600)


def _private_sidecars(path: str) -> None:
    """Best effort: SQLite already gives these the database file's mode."""
    for suffix in ("-wal", "-shm", "-journal"):
        side = Path(path + suffix)
        with contextlib.suppress(OSError):  # absent, or another user's: not ours to fix
            side.chmod(0o600)


class SQLiteStore(SQLStore):
    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, urgent: bool = False) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._urgent = urgent
        memory = self.path == MEMORY
        if not memory:
            _create_private(self.path)
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            # SQLite's own wait sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries: an urgent
            # connection (the acknowledgement path's) polls every half millisecond instead.
            conn.execute(f"PRAGMA busy_timeout = {0 if urgent else int(BUSY_TIMEOUT * 1000)}")
            if not memory:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            folder = os.path.dirname(os.path.abspath(self.path))
            raise StoreError(
                f"AUTOJOIN_DATABASE_URL: cannot open the SQLite database {self.path} ({exc}); "
                f"is it an autojoin database, and may this user write to it and to {folder} "
                "(SQLite keeps -wal and -shm files beside it)?"
            ) from exc
        self._conn: sqlite3.Connection | None = conn
        if not memory:
            _private_sidecars(self.path)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _atomic(self, fn: Callable[[q.Tx], T], *, write: bool = True) -> T:
        if not self._urgent:
            return self._once(fn, write)
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                return self._once(fn, write)
            except StoreError as exc:
                cause = exc.__cause__
                code = getattr(cause, "sqlite_errorcode", 0)
                if code & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(URGENT_POLL)

    def _once(self, fn: Callable[[q.Tx], T], write: bool) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError("the store is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite: {exc}") from exc
            try:
                result = fn(_SQLiteTx(conn))
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    # A failed rollback hides nothing: the original error is reported.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite: {exc}") from exc
                raise
            return result

    def claim(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        kinds: Collection[str] | None = None,
        groups: int | None = None,
    ) -> list[Job]:
        """Pick in a read transaction, take in short write transactions: the single write lock
        is held for the rows taken, not for the scan of everything due. A job another worker
        took in between is left out (`TAKE` checks that each is still due); if it took them
        all, the pick is made again."""
        now = float(now)
        shape = claim_shape(now, limit, kinds, groups)
        if shape is None:
            return []
        in_kinds, params = shape
        pick = (q.PICK if groups is None else q.PICK_GROUPS).format(kinds=in_kinds)
        head = (owner, now + float(lease_seconds), now)
        for _ in range(PICK_TRIES):
            ids = [int(r[0]) for r in self._atomic(lambda tx: tx.rows(pick, params), write=False)]
            if not ids:
                return []
            rows: list[q.Row] = []
            for start in range(0, len(ids), TAKE_CHUNK):
                if start:
                    _let_others_write()
                chunk = ids[start : start + TAKE_CHUNK]
                take = q.TAKE.format(ids=q.marks(len(chunk)))
                taken = (*head, *chunk, now, now)
                rows += self._atomic(lambda tx: tx.rows(take, taken))  # noqa: B023 (runs at once)
            if rows:
                return by_due(rows)
        return []  # others took everything picked, every time: the next step looks again

    def settle_many(self, owner: str, now: float, items: Sequence[Settlement]) -> list[int]:
        """In transactions of `SETTLE_CHUNK` results, in order: each job settles on its own, so
        only the lock's timing differs from one transaction (a crash between two leaves the
        rest leased, to be taken over like any unsettled job)."""
        lost: list[int] = []
        for start in range(0, len(items), SETTLE_CHUNK):
            if start:
                _let_others_write()
            lost += super().settle_many(owner, now, items[start : start + SETTLE_CHUNK])
        return lost

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
