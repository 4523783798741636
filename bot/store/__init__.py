"""The durable store: `open_store(url)` picks the adapter and brings the schema up to date.

`Store` (bot/store/base.py) is the contract; `AsyncStore` (bot/store/aio.py) is the async
façade with group commit that the web tier and the worker use.
"""

from __future__ import annotations

from bot.store.aio import AsyncStore
from bot.store.base import Store
from bot.store.urls import mask_url, parse_url

__all__ = ["AsyncStore", "Store", "mask_url", "open_store"]


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store named by `url` and (by default) run pending migrations.

    Unknown schemes raise `StoreError` naming only the scheme; credentials never appear.
    """
    target = parse_url(url)
    store: Store
    if target.kind == "sqlite":
        from bot.store.sqlite import SQLiteStore  # only the backend in use is loaded

        store = SQLiteStore(target.location)
    else:
        from bot.store.postgres import PostgresStore  # psycopg costs ~50 ms to import

        store = PostgresStore(target.location, schema=target.schema)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
