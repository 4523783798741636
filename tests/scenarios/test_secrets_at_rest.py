"""Canary secrets never reach /metrics, the audit trail, job payloads or any stored table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.sandbox.company import WEBHOOK_CODE
from bot.sandbox.events import bot_message, user_add
from tests.harness import open_harness

pytestmark = pytest.mark.anyio

TOKEN = "canary-app-token-5d1e0b7a"
CLIENT = "canary-bot-client-9a7c33f1"
CANARIES = (TOKEN, CLIENT, WEBHOOK_CODE)


async def test_no_canary_in_metrics_audit_or_database(tmp_path: Path) -> None:
    async with open_harness(tmp_path, B24_APP_TOKEN=TOKEN, B24_BOT_CLIENT_ID=CLIENT) as h:
        hire = h.portal.upsert_user(80, name="Cara", departments=[4])
        await h.post(user_add(hire, token=TOKEN))
        await h.post(user_add(hire, token=TOKEN + "x"))  # forged: refused
        secret_chat = h.portal.upsert_user(81, name="Dan", departments=[9])
        await h.post(user_add(secret_chat, token=TOKEN))
        message = bot_message(
            bot_id=1_000_001,
            bot_code="autojoin",
            text="join marketing",
            author=h.portal.state.users[3],
            token=CLIENT,
            message_id=777,
        )
        await h.post(message)
        await h.drain()
        h.portal.revoke_webhook()  # a portal-wide failure: the pause reason is stored too
        await h.post(user_add(h.portal.upsert_user(82, name="Eli", departments=[7]), token=TOKEN))
        assert h.services.worker is not None
        await h.services.worker.run_until_idle()
        metrics = (await h.client.get("/metrics")).text
        health = (await h.client.get("/healthz")).text
    assert '"degraded"' in health  # the pause path ran
    assert "autojoin_events_rejected_total" in metrics
    dump = metrics + health
    with sqlite3.connect(tmp_path / "autojoin.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert {"jobs", "audit", "events", "kv"} <= set(tables)
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                dump += repr(row)
    assert "'added'" in dump
    assert "INVALID_CREDENTIALS" in dump
    for canary in CANARIES:
        assert canary not in dump, canary
