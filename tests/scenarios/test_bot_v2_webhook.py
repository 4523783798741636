"""A Chatbots 2.0 bot in webhook mode: the portal POSTs form bodies with
`auth[application_token]` = "custom" + botToken; no B24_APP_TOKEN is needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox.company import MARKETING
from bot.wiring import create_app
from tests.scenarios.v2_kit import BOT_TOKEN, database_url, v2_stage

pytestmark = pytest.mark.anyio
__all__ = ["database_url"]
PUBLIC = "http://bot.test"


@pytest.mark.parametrize("app_token", ["", "also-an-outbound-webhook-token"])
async def test_pushed_v2_events_are_verified_by_the_derived_token_and_answered(
    tmp_path: Path, database_url: str, app_token: str
) -> None:
    env: dict[str, Any] = {
        "AUTOJOIN_BOT_EVENT_MODE": "webhook",
        "AUTOJOIN_PUBLIC_URL": PUBLIC,
        "B24_APP_TOKEN": app_token,
    }
    async with v2_stage(tmp_path, database_url, **env) as s:
        portal = s.h.portal
        bot = portal.state.bots[s.bot_id].v2
        assert bot is not None
        assert (bot.event_mode, bot.webhook_url) == ("webhook", PUBLIC + "/events")
        assert s.h.services.fetcher is None  # nothing to fetch in webhook mode
        portal.outbound = httpx.ASGITransport(app=create_app(s.h.services))
        portal.stage.message(s.bot_id, 2, "marketing please")
        command = portal.stage.command(s.bot_id, 3, "join", "marketing")
        sent = await portal.deliver()
        assert [d.status for d in sent] == [200, 200]
        portal.stage.message(s.bot_id, 2, "marketing please")  # a new message: a new key
        await portal.deliver()
        await s.h.drain()
        assert {2, 3} <= portal.chat_members(MARKETING)
        [answer] = [m for m in s.replies if m.method == "imbot.v2.Command.answer"]
        assert answer.message_id == command.message_id
        assert len([m for m in s.replies if m.dialog_id == "2"]) == 2
        assert len(s.adds_of(2)) == 1  # the second ask: already a member, no second add


async def test_a_forged_v2_post_is_refused(tmp_path: Path, database_url: str) -> None:
    env: dict[str, Any] = {"AUTOJOIN_BOT_EVENT_MODE": "webhook", "AUTOJOIN_PUBLIC_URL": PUBLIC}
    async with v2_stage(tmp_path, database_url, **env) as s:
        body = b"event=ONIMBOTV2MESSAGEADD&auth[application_token]=" + BOT_TOKEN.encode()
        response = await s.h.post(body)  # the bare token, not "custom" + token
        assert response.status_code == 401
        assert response.json()["error"] == "token"
