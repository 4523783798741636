"""The chat-bot scenarios' stage: the harness with a registered bot, and people who talk to it.

Bot events are posted as a webhook-registered bot receives them: `auth[application_token]`
is the bot's CLIENT_ID (reference §1.5, §2.5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.chatbot.registration import Registration
from bot.chatbot.registration_classic import BotSetup, register_bot
from bot.sandbox import FakePortal, Message
from bot.sandbox.events import bot_command, bot_message
from bot.sandbox.state import User
from tests.fakes import FakeClock
from tests.harness import Harness, open_harness

CLIENT = "autojoin-scenario-client-6f1c"
PUBLIC_URL = "https://autojoin.example.com"


@dataclass
class BotStage:
    h: Harness
    bot: Registration
    code: str

    def user(self, user_id: int) -> User:
        return self.h.portal.state.users[user_id]

    async def say(
        self, user_id: int, text: str, message_id: int, *, token: str = CLIENT, **extra: Any
    ) -> httpx.Response:
        author: Any = extra.pop("author", None) or self.user(user_id)
        body = bot_message(
            bot_id=self.bot.bot_id, bot_code=self.code, text=text, author=author, token=token,
            message_id=message_id, **extra,
        )  # fmt: skip
        return await self.h.post(body)

    async def command(
        self, user_id: int, name: str, params: str, message_id: int, **extra: Any
    ) -> httpx.Response:
        body = bot_command(
            bot_id=self.bot.bot_id, bot_code=self.code, command=name,
            command_id=self.bot.commands.get(name, 999), command_params=params,
            author=self.user(user_id), token=CLIENT, message_id=message_id, **extra,
        )  # fmt: skip
        return await self.h.post(body)

    @property
    def replies(self) -> list[Message]:
        return self.h.portal.messages

    def adds_of(self, user_id: int) -> list[int]:
        """Chats an `im.chat.user.add` was sent for with this user in USERS."""
        calls = self.h.portal.calls_to("im.chat.user.add")
        return [int(c.params["CHAT_ID"]) for c in calls if user_id in _ints(c.params["USERS"])]


def _ints(value: Any) -> list[int]:
    items = value.values() if isinstance(value, dict) else value
    return [int(v) for v in items]


@asynccontextmanager
async def bot_stage(
    tmp_path: Path,
    rules: str | None = None,
    *,
    portal: FakePortal | None = None,
    clock: FakeClock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **env: str,
) -> AsyncIterator[BotStage]:
    if rules is not None:
        (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    settings: dict[str, Any] = {"B24_BOT_CLIENT_ID": CLIENT, "AUTOJOIN_PUBLIC_URL": PUBLIC_URL}
    async with open_harness(
        tmp_path, portal=portal, clock=clock, transport=transport, **(settings | env)
    ) as h:
        worker = h.services.worker
        assert worker is not None
        setup = BotSetup.from_settings(h.services.settings)
        bot = await register_bot(worker.ctx.client, h.services.store, setup, h.clock())
        yield BotStage(h, bot, setup.code)
