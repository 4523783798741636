from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.jobs import NewJob
from bot.retention import DAY, prune_once
from bot.settings import Settings
from bot.store import open_store
from bot.store.aio import AsyncStore

pytestmark = pytest.mark.anyio


async def test_one_prune_per_interval_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    stores = [AsyncStore(open_store(url)), AsyncStore(open_store(url))]
    settings = Settings.load({}, env_file=tmp_path / "absent.env")
    old = 1_000_000.0
    await stores[0].accept_event("old", "ONUSERADD", [NewJob("user.resolve", {})], old)
    now = old + 100 * DAY
    results = [await prune_once(store, settings, now) for store in stores]
    assert results[1] is None
    assert results[0] is not None
    assert results[0]["events"] == 1
    assert await prune_once(stores[1], settings, now + DAY / 2) is None
    assert await prune_once(stores[1], settings, now + DAY) is not None
    for store in stores:
        await store.close()


def test_dedupe_keys_must_outlive_the_freshness_window(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AUTOJOIN_KEEP_EVENTS_DAYS"):
        Settings.load(
            {"AUTOJOIN_MAX_EVENT_AGE": "864000", "AUTOJOIN_KEEP_EVENTS_DAYS": "5"},
            env_file=tmp_path / "absent.env",
        )
