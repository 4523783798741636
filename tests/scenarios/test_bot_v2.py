"""A Chatbots 2.0 bot in fetch mode end to end: events pulled from the fake portal's queue,
the same handlers and once-only keys as pushed events, replies through `imbot.v2.*`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.chatbot.fetch import BUSY_POLL, LIMIT, OFFSET_KEY, PAUSE_KEY, PAUSED_POLL, BotFetcher
from bot.sandbox.company import BACKEND_GUILD, ENGINEERING, MARKETING
from tests.scenarios.v2_kit import BOT_TOKEN, V2Stage, database_url, v2_stage

pytestmark = pytest.mark.anyio
__all__ = ["database_url"]


def fetcher(s: V2Stage) -> BotFetcher:
    assert s.h.services.fetcher is not None
    return s.h.services.fetcher


def hidden_by_rule(s: V2Stage, name: str) -> bool:
    [rule] = [r for r in s.h.services.rules.current.rules if r.name == name]
    return rule.hide_history


def order_of(s: V2Stage, *methods: str) -> list[int]:
    """Index of the first call of each method in the portal's call log."""
    calls = [c.method for c in s.h.portal.state.calls]
    return [calls.index(m.lower()) for m in methods]


async def test_a_private_message_is_fetched_added_and_answered_after_the_add(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        s.h.portal.stage.message(s.bot_id, 2, "Hi! I'd like to join marketing, please")
        assert await fetcher(s).poll_once() == BUSY_POLL  # activity: look again soon
        assert s.replies == []  # nothing but the commit on the intake path
        await s.h.drain()
        assert 2 in s.h.portal.chat_members(MARKETING)
        assert s.h.portal.history_hidden(MARKETING, 2) is hidden_by_rule(
            s, "marketing-self-service"
        )
        [reply] = s.replies
        assert (reply.method, reply.dialog_id, reply.bot_id) == (
            "imbot.v2.Chat.Message.send",
            "2",
            s.bot_id,
        )
        assert reply.message == "Welcome, Boris! You are now in “Marketing”."
        add, send = order_of(s, "im.chat.user.add", "imbot.v2.Chat.Message.send")
        assert add < send
        assert s.h.portal.calls_to("user.get") == []  # departments came with the event
        # The next turn acknowledges: the portal's queue is empty, the offset kept.
        offset = await fetcher(s).offset(s.bot_id)
        assert offset > 0
        assert await fetcher(s).poll_once() == s.h.services.settings.bot_poll_seconds
        assert s.h.portal.stage.queue(s.bot_id)["pending"] == []
        assert await fetcher(s).offset(s.bot_id) == offset  # nextOffset 0 did not reset it


async def test_a_group_mention_and_a_join_command(tmp_path: Path, database_url: str) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        stage = s.h.portal.stage
        stage.join(s.bot_id, 7, chat_id=ENGINEERING)  # Grace adds the bot to the chat
        stage.message(s.bot_id, 7, "please add me to marketing", chat_id=ENGINEERING)
        command = stage.command(s.bot_id, 3, "join", "marketing")
        await fetcher(s).poll_once()
        await s.h.drain()
        assert {7, 3} <= s.h.portal.chat_members(MARKETING)
        by_method: dict[str, list[str | None]] = {}
        for m in s.replies:
            by_method.setdefault(m.method, []).append(m.dialog_id)
        assert by_method["imbot.v2.Chat.Message.send"] == [f"chat{ENGINEERING}"] * 2
        welcome, mention = [m for m in s.replies if m.dialog_id == f"chat{ENGINEERING}"]
        assert "/join" in welcome.message
        assert mention.message.startswith("[USER=7]Grace[/USER], Welcome, Grace!")
        [answer] = [m for m in s.replies if m.method == "imbot.v2.Command.answer"]
        assert (answer.command_id, answer.message_id, answer.dialog_id) == (
            s.bot.commands["join"],
            command.message_id,
            "3",
        )
        assert answer.message == "Welcome, Clara! You are now in “Marketing”."
        add, answered = order_of(s, "im.chat.user.add", "imbot.v2.Command.answer")
        assert add < answered
        adds = s.h.portal.calls_to("im.chat.user.add")
        assert all(c.params["HIDE_HISTORY"] in ("Y", "N") for c in adds)


async def test_redelivered_events_add_and_answer_once(tmp_path: Path, database_url: str) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        stage, store = s.h.portal.stage, s.h.services.store
        stage.message(s.bot_id, 2, "marketing please")
        stage.command(s.bot_id, 3, "join", "marketing")
        await fetcher(s).poll_once()
        await s.h.drain()
        assert len(s.replies) == 2
        # As if the process died after the commit but before it stored the new offset:
        # the portal was never told, and serves the same events again.
        key = OFFSET_KEY.format(s.bot_id)
        await store.set_state(key, None, s.h.clock())
        assert len(stage.queue(s.bot_id)["pending"]) == 2
        await fetcher(s).poll_once()
        await s.h.drain()
        # The portal's own offset rewound after the acknowledgement: the stored offset,
        # passed again, confirms them at once.
        await fetcher(s).poll_once()
        assert stage.queue(s.bot_id)["pending"] == []
        assert stage.rewind(s.bot_id) == 2
        await fetcher(s).poll_once()
        await s.h.drain()
        assert (len(s.adds_of(2)), len(s.adds_of(3))) == (1, 1)
        assert len(s.replies) == 2
        duplicates = s.h.services.metrics.events.labels("ONIMBOTV2MESSAGEADD", "duplicate")
        assert duplicates._value.get() == 1


async def test_a_wrong_token_pauses_fetching_with_the_reason_on_healthz(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        bot = s.h.portal.state.bots[s.bot_id]
        assert bot.v2 is not None
        bot.v2.token = "rotated-elsewhere"
        assert await fetcher(s).poll_once() == PAUSED_POLL
        assert await fetcher(s).poll_once() == PAUSED_POLL  # looks again, slowly: no spin
        body = (await s.h.client.get("/healthz")).json()
        assert body["status"] == "degraded"
        [reason] = [r for r in body["reasons"] if r["check"] == "bot_fetch"]
        assert reason["code"] == "BOT_OWNERSHIP_ERROR"
        assert "B24_BOT_TOKEN" in reason["message"]
        assert BOT_TOKEN not in json.dumps(body)
        bot.v2.token = BOT_TOKEN
        await fetcher(s).poll_once()
        assert await s.h.services.store.get_state(PAUSE_KEY) is None
        assert (await s.h.client.get("/healthz")).json()["status"] == "ok"


async def test_more_waiting_means_the_next_poll_in_two_seconds_never_sooner(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url, AUTOJOIN_BOT_POLL_SECONDS="1") as s:
        for n in range(LIMIT + 1):
            s.h.portal.stage.message(s.bot_id, 2 + n % 9, f"hello {n}")
        assert await fetcher(s).poll_once() == BUSY_POLL == 2.0  # hasMore: the floor
        assert await fetcher(s).poll_once() == 1.0  # the last one: at the idle interval
        assert await fetcher(s).poll_once() == 1.0
        assert s.h.portal.stage.queue(s.bot_id)["pending"] == []
        accepted = s.h.services.metrics.events.labels("ONIMBOTV2MESSAGEADD", "accepted")
        assert accepted._value.get() == LIMIT + 1


async def test_help_why_russian_and_only_departments_work_the_same_for_v2(
    tmp_path: Path, database_url: str
) -> None:
    async with v2_stage(tmp_path, database_url) as s:
        stage = s.h.portal.stage
        s.h.portal.state.chats[BACKEND_GUILD].members.add(9)
        stage.command(s.bot_id, 3, "help")
        stage.command(s.bot_id, 9, "why")
        stage.message(s.bot_id, 2, "join backend")  # Boris (Sales) may not: only Engineering
        stage.message(s.bot_id, 4, "маркетинг", language="ru")
        stage.command(s.bot_id, 5, "help", language="ru")
        await fetcher(s).poll_once()
        await s.h.drain()
        by_dialog = {m.dialog_id: m for m in s.replies}
        assert by_dialog["3"].method == "imbot.v2.Command.answer"
        assert "/join" in by_dialog["3"].message
        assert by_dialog["9"].method == "imbot.v2.Command.answer"
        assert "“Backend guild”: you are in it (rule backend-guild)" in by_dialog["9"].message
        assert "not open to you" in by_dialog["2"].message
        assert 2 not in s.h.portal.chat_members(BACKEND_GUILD)
        assert by_dialog["4"].message == "Welcome, Dieter! You are now in «Marketing»."  # ru quotes
        assert 4 in s.h.portal.chat_members(MARKETING)
        assert by_dialog["5"].message.startswith("Я добавляю в чаты")
