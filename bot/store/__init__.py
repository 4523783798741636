"""The durable store: `open_store(url)` picks the adapter and brings the schema up to date.

`Store` (bot/store/base.py) is the contract; `AsyncStore` (bot/store/aio.py) is the async
façade with group commit that the web tier and the worker use.
"""

from __future__ import annotations

from pathlib import Path

from bot.errors import NoDatabase
from bot.store.aio import AsyncStore
from bot.store.base import Store
from bot.store.core import SQLStore
from bot.store.urls import Target, mask_url, parse_url

__all__ = ["AsyncStore", "Store", "mask_url", "open_existing_store", "open_store"]
MEMORY_URL = "sqlite:///:memory:"


def _adapter(target: Target, urgent: bool = False) -> SQLStore:
    if target.kind == "sqlite":
        from bot.store.sqlite import SQLiteStore  # only the backend in use is loaded

        return SQLiteStore(target.location, urgent=urgent)
    from bot.store.postgres import PostgresStore  # psycopg costs ~50 ms to import

    return PostgresStore(target.location, schema=target.schema)


def open_existing_store(url: str) -> Store:
    """For commands that read (or repair) what is there: never creates a database.

    Raises `NoDatabase` when there is no SQLite file, or no autojoin tables in it or in the
    PostgreSQL database; an older schema is brought up to date, as `serve` would.
    """
    target = parse_url(url)
    if target.kind == "sqlite" and target.location != ":memory:":
        path = Path(target.location)
        if not path.is_file():
            raise NoDatabase(
                f"no database at {path} (AUTOJOIN_DATABASE_URL): nothing was queued or "
                "recorded there yet; `serve` and `sync` create it. Run this where they run"
            )
    store = _adapter(target)
    try:
        if store.version() == 0:
            raise NoDatabase(
                "the database in AUTOJOIN_DATABASE_URL has no autojoin tables: nothing was "
                "queued or recorded there yet; `serve` and `sync` create them"
            )
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def open_store(url: str, *, migrate: bool = True, urgent: bool = False) -> Store:
    """Open the store named by `url` and (by default) run pending migrations.

    `urgent`: the acknowledgement path's connection, which polls for SQLite's write lock
    instead of backing off (a commit must not wait tens of milliseconds after a claim ends).

    Unknown schemes raise `StoreError` naming only the scheme; credentials never appear.
    """
    store: Store = _adapter(parse_url(url), urgent)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
