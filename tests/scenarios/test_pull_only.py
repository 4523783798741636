"""Pull-only `autojoin serve`: no B24_APP_TOKEN, no AUTOJOIN_PUBLIC_URL, nothing inbound.

Real processes against the fake portal on a loopback port: `register-bot` with a bot token,
then `serve`, which fetches the bot's events and polls for hires. Nothing is ever POSTed to
autojoin, and a POST is refused with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import EMEA_DEALS, MARKETING, SALES_ALL_HANDS
from tests.processes import ServeProcess, wait_until
from tests.scenarios.v2_kit import BOT_TOKEN, database_url, pull_only_env, register_bot

__all__ = ["database_url"]
FORM = "application/x-www-form-urlencoded"
WAIT = 60.0


@pytest.fixture
def portal() -> Iterator[tuple[FakePortal, str]]:
    portal = FakePortal(rate=100.0, burst=1000)
    with portal.serve_in_thread() as base:
        yield portal, base


def test_pull_only_serve_runs_the_bot_story_and_polls_hires(
    tmp_path: Path, database_url: str, portal: tuple[FakePortal, str]
) -> None:
    fake, base = portal
    env = pull_only_env(
        tmp_path,
        fake,
        base,
        database_url,
        AUTOJOIN_HIRE_POLL_SECONDS="1",
        AUTOJOIN_LOG_LEVEL="INFO",
    )
    assert "registered Chatbots 2.0 bot 'autojoin'" in register_bot(tmp_path, env)
    [bot_id] = fake.state.bots
    with ServeProcess(env=env, cwd=tmp_path, log=tmp_path / "serve.log") as serve:
        wait_until(lambda: "intakes:" in serve.output(), timeout=WAIT, what="the intakes line")
        assert "pushed events off" in serve.output()
        assert "bot fetch every 1 s" in serve.output()
        assert "hire poll every 1 s" in serve.output()
        refused = serve.post("/events", b"event=ONUSERADD&data[ID]=5", FORM)
        assert refused.status_code == 403
        assert refused.json()["error"] == "pushes_off"
        assert "B24_APP_TOKEN" in refused.json()["message"]
        # The cursor is set at the first start: wait for it before anyone is hired.
        wait_until(
            lambda: fake.calls_to("user.get"), timeout=WAIT, what="the hire poll's first call"
        )
        fake.stage.message(bot_id, 2, "marketing, please")
        command = fake.stage.command(bot_id, 3, "join", "marketing")
        nina = fake.stage.hire(name="Nina", departments=[4])

        def done() -> bool:
            assert serve.alive(), serve.tail()
            replied = {m.method for m in fake.messages if m.bot_id == bot_id}
            return (
                {2, 3} <= fake.chat_members(MARKETING)
                and nina.id in fake.chat_members(SALES_ALL_HANDS)
                and nina.id in fake.chat_members(EMEA_DEALS)
                and replied == {"imbot.v2.Chat.Message.send", "imbot.v2.Command.answer"}
            )

        wait_until(done, timeout=WAIT, what="the bot story and the hire")
        [answer] = [m for m in fake.messages if m.method == "imbot.v2.Command.answer"]
        assert answer.message_id == command.message_id
        assert not [c for c in fake.state.calls if c.method == "imbot.register"]
        wait_until(
            lambda: fake.stage.queue(bot_id)["pending"] == [],
            timeout=WAIT,
            what="the fetched events to be acknowledged",
        )
    assert BOT_TOKEN not in (tmp_path / "serve.log").read_text()
