"""The Chatbots 2.0 scenarios' stage: the harness with a v2 bot registered by `register_v2`.

Events are made on the fake portal (`portal.stage`): a fetch-mode bot's wait in its queue
for the poller, exactly as `imbot.v2.Event.get` would hand them out.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.chatbot.registration import Registration, V2Setup, register_v2
from bot.sandbox import FakePortal, Message
from tests.harness import Harness, open_harness
from tests.processes import REPO, AutojoinProcess, postgres_schema

BOT_TOKEN = "v2-scenario-token-7c1d"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'autojoin.db'}"
    else:
        with postgres_schema(prefix="autojoin_v2") as url:
            yield url


def pull_only_env(
    tmp_path: Path, portal: FakePortal, base: str, database_url: str, **extra: str
) -> dict[str, str]:
    """A real process's settings for a fetch-mode bot and no push token: the sample rules
    copied next to it, a fast fake portal, one-second polls."""
    shutil.copy(REPO / "rules.yaml", tmp_path / "rules.yaml")
    return {
        "B24_WEBHOOK_URL": portal.webhook_url(base),
        "B24_BOT_TOKEN": BOT_TOKEN,
        "B24_RATE": "100",
        "B24_BURST": "1000",
        "AUTOJOIN_RULES": str(tmp_path / "rules.yaml"),
        "AUTOJOIN_DATABASE_URL": database_url,
        "AUTOJOIN_BOT_POLL_SECONDS": "1",
        "AUTOJOIN_COALESCE_MS": "0",
        **extra,
    }


def register_bot(tmp_path: Path, env: dict[str, str]) -> str:
    """`autojoin register-bot` as a real process; returns what it printed."""
    reg = AutojoinProcess(["register-bot"], env=env, cwd=tmp_path, log=tmp_path / "reg.log")
    with reg:
        assert reg.wait() == 0, reg.tail()
        return reg.output()


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
