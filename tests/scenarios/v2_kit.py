"""The Chatbots 2.0 scenarios' stage: the harness with a v2 bot registered by `register_v2`.

Events are made on the fake portal (`portal.stage`): a fetch-mode bot's wait in its queue
for the poller, exactly as `imbot.v2.Event.get` would hand them out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.chatbot.registration import Registration, V2Setup, register_v2
from bot.sandbox import Message
from tests.harness import Harness, open_harness
from tests.processes import postgres_schema

BOT_TOKEN = "v2-scenario-token-7c1d"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'autojoin.db'}"
    else:
        with postgres_schema(prefix="autojoin_v2") as url:
            yield url


@dataclass
class V2Stage:
    h: Harness
    bot: Registration

    @property
    def bot_id(self) -> int:
        return self.bot.bot_id

    @property
    def replies(self) -> list[Message]:
        return [m for m in self.h.portal.messages if m.method.startswith("imbot.v2.")]

    def adds_of(self, user_id: int) -> list[int]:
        calls = self.h.portal.calls_to("im.chat.user.add")
        return [int(c.params["CHAT_ID"]) for c in calls if user_id in _ints(c.params["USERS"])]


def _ints(value: Any) -> list[int]:
    items = value.values() if isinstance(value, dict) else value
    return [int(v) for v in items]


@asynccontextmanager
async def v2_stage(
    tmp_path: Path, database_url: str, *, register: bool = True, **env: str
) -> AsyncIterator[V2Stage]:
    settings: dict[str, Any] = {
        "B24_BOT_TOKEN": BOT_TOKEN,
        "B24_APP_TOKEN": "",
        "AUTOJOIN_DATABASE_URL": database_url,
        **env,
    }
    async with open_harness(tmp_path, **settings) as h:
        worker = h.services.worker
        assert worker is not None
        bot = Registration(0, False, {}, ())
        if register:
            setup = V2Setup.from_settings(h.services.settings)
            bot = await register_v2(worker.ctx.client, h.services.store, setup, h.clock())
        yield V2Stage(h, bot)
