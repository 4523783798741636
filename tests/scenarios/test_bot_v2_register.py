"""`register-bot` for a Chatbots 2.0 bot: idempotent, never a classic call, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chatbot.registration import V2Setup, register_v2, unregister_v2
from bot.chatbot.runtime import BOT_COMMANDS_KEY, BOT_ID_KEY
from bot.errors import SettingsError
from tests.scenarios.v2_kit import BOT_TOKEN, database_url, v2_stage

pytestmark = pytest.mark.anyio
__all__ = ["database_url"]


def _classic_calls(methods: list[str]) -> list[str]:
    return [m for m in methods if m.startswith("imbot.") and not m.startswith("imbot.v2.")]


async def test_register_twice_one_v2_bot_three_commands_no_classic_call(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        portal, store = s.h.portal, s.h.services.store
        setup = V2Setup.from_settings(s.h.services.settings)
        client = s.h.services.worker.ctx.client  # type: ignore[union-attr]
        again = await register_v2(client, store, setup, s.h.clock())
        assert (s.bot.created, again.created) == (True, False)
        assert again.bot_id == s.bot_id
        assert again.commands == s.bot.commands
        assert set(s.bot.new_commands) == {"join", "help", "why"}
        assert (again.new_commands, again.changed) == ((), ())
        [bot] = portal.state.bots.values()
        assert bot.v2 is not None
        assert (bot.v2.event_mode, bot.code) == ("fetch", "autojoin")
        names = sorted(c.command for c in portal.state.commands.values())
        assert names == ["help", "join", "why"]
        methods = [c.method for c in portal.state.calls]
        assert _classic_calls(methods) == []
        assert methods.count("imbot.v2.bot.register") == 1
        assert "imbot.v2.bot.update" not in methods
        assert methods.count("imbot.v2.command.register") == 3
        assert await store.get_state(BOT_ID_KEY) == str(s.bot_id)
        assert BOT_TOKEN not in repr(portal.state.calls)


async def test_a_rerun_changes_only_what_differs(tmp_path: Path, database_url: str) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        portal, store = s.h.portal, s.h.services.store
        client = s.h.services.worker.ctx.client  # type: ignore[union-attr]
        [join] = [c for c in portal.state.commands.values() if c.command == "join"]
        join.lang = [{"LANGUAGE_ID": "en", "TITLE": "Old title", "PARAMS": ""}]
        settings = s.h.services.settings
        renamed = V2Setup("autojoin", "Joiner", BOT_TOKEN, settings.bot_event_mode, "")
        done = await register_v2(client, store, renamed, s.h.clock())
        assert set(done.changed) == {"properties", "/join"}
        [update] = portal.calls_to("imbot.v2.bot.update")
        assert set(update.params["fields"]) == {"properties"}
        assert len(portal.calls_to("imbot.v2.command.update")) == 1
        assert portal.state.bots[s.bot_id].properties["name"] == "Joiner"
        hook = V2Setup("autojoin", "Joiner", BOT_TOKEN, "webhook", "https://a.example/events")
        moved = await register_v2(client, store, hook, s.h.clock())
        assert moved.changed == ("eventMode", "webhookUrl")
        bot = portal.state.bots[s.bot_id].v2
        assert bot is not None
        assert (bot.event_mode, bot.webhook_url) == ("webhook", "https://a.example/events")


async def test_a_code_held_by_another_token_is_one_line_saying_what_to_do(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        client = s.h.services.worker.ctx.client  # type: ignore[union-attr]
        other = V2Setup("autojoin", "autojoin", "someone-elses-token", "fetch", "")
        with pytest.raises(SettingsError) as caught:
            await register_v2(client, s.h.services.store, other, s.h.clock())
        message = str(caught.value)
        assert "\n" not in message
        assert "B24_BOT_TOKEN" in message
        assert "AUTOJOIN_BOT_CODE" in message
        assert "someone-elses-token" not in message
        assert len(s.h.portal.state.bots) == 1


async def test_unregister_removes_the_bot_and_forgets_its_ids(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        store = s.h.services.store
        client = s.h.services.worker.ctx.client  # type: ignore[union-attr]
        setup = V2Setup.from_settings(s.h.services.settings)
        assert await unregister_v2(client, store, setup, s.h.clock()) == s.bot_id
        assert s.h.portal.state.bots == {}
        assert s.h.portal.state.commands == {}
        assert await store.get_state(BOT_COMMANDS_KEY) is None
        assert await unregister_v2(client, store, setup, s.h.clock()) is None
        assert _classic_calls([c.method for c in s.h.portal.state.calls]) == []
