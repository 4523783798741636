"""The bot under pressure: its token, request budgets, and adds that keep failing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.chatbot.limits import GLOBAL_KEY, USER_KEY
from bot.chatbot.replies import QUEUED_KEY
from bot.sandbox.company import MARKETING
from bot.sandbox.events import APP_TOKEN, MEMBER_ID
from tests.harness import open_harness
from tests.scenarios.bot_kit import CLIENT, bot_stage

pytestmark = pytest.mark.anyio


async def test_events_carrying_the_client_id_as_token_are_accepted(tmp_path: Path) -> None:
    """With no B24_APP_TOKEN at all, B24_BOT_CLIENT_ID alone authenticates bot events."""
    async with bot_stage(tmp_path, B24_APP_TOKEN="") as s:
        accepted = await s.say(3, "join marketing", message_id=601, token=CLIENT)
        forged = await s.say(3, "join marketing", message_id=602, token=APP_TOKEN)
        assert accepted.json()["status"] == "accepted"
        assert forged.status_code == 401
        await s.h.drain()
        assert 3 in s.h.portal.chat_members(MARKETING)
        assert [r.client_id for r in s.replies] == [CLIENT]


async def test_per_user_limit_is_answered_once_then_silent(tmp_path: Path) -> None:
    async with bot_stage(tmp_path, AUTOJOIN_BOT_USER_LIMIT="2") as s:
        for n in range(4):
            await s.say(3, "marketing", message_id=610 + n)
            await s.h.drain()
        await s.say(5, "marketing", message_id=620)  # someone else is not affected
        await s.h.drain()
        to_clara = [r.message for r in s.replies if r.dialog_id == "3"]
        assert to_clara == [
            "Welcome, Clara! You are now in “Marketing”.",
            "You were already in “Marketing”.",
            "You are sending requests too fast. Please wait a minute and try again.",
        ]
        assert 5 in s.h.portal.chat_members(MARKETING)
        s.h.clock.advance(61)
        await s.say(3, "marketing", message_id=630)
        await s.h.drain()
        assert s.replies[-1].message == "You were already in “Marketing”."


async def test_the_budget_is_shared_by_workers_through_the_store(tmp_path: Path) -> None:
    """Two processes on one database: the second sees the first one's request."""
    async with bot_stage(tmp_path, AUTOJOIN_BOT_USER_LIMIT="1") as s:
        await s.say(3, "marketing", message_id=640)
        await s.h.drain()
        env: dict[str, Any] = {"B24_BOT_CLIENT_ID": CLIENT, "AUTOJOIN_BOT_USER_LIMIT": "1"}
        async with open_harness(tmp_path, portal=s.h.portal, clock=s.h.clock, **env) as other:
            await s.say(3, "marketing", message_id=641)
            await other.drain()
        assert s.replies[-1].message.startswith("You are sending requests too fast")
        assert await s.h.services.store.get_state(USER_KEY.format(3)) is not None


async def test_portal_wide_limit_says_busy_and_spares_the_persons_budget(tmp_path: Path) -> None:
    async with bot_stage(tmp_path, AUTOJOIN_BOT_GLOBAL_LIMIT="2") as s:
        for n, user in enumerate((2, 3, 4)):
            await s.say(user, "marketing", message_id=650 + n)
        await s.h.drain()
        [busy] = [r for r in s.replies if r.dialog_id == "4"]
        assert busy.message.startswith("I am getting too many requests")
        assert 4 not in s.h.portal.chat_members(MARKETING)
        raw = await s.h.services.store.get_state(USER_KEY.format(4))
        assert '"log":{}' in (raw or "")  # told, but nothing counted against her
        assert await s.h.services.store.get_state(GLOBAL_KEY) is not None


async def test_slow_adds_get_one_queued_notice_then_the_result(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        s.h.portal.fail_next("im.chat.user.add", "INTERNAL_SERVER_ERROR", times=5)
        asked_at = s.h.clock()
        await s.say(3, "join marketing", message_id=660)
        await s.h.drain()
        queued, final = s.replies
        assert queued.message.startswith("Your request is queued")
        assert 10 <= queued.at - asked_at < 30
        assert final.message == "Welcome, Clara! You are now in “Marketing”."
        assert final.at > queued.at
        assert (queued.dialog_id, final.dialog_id) == ("3", "3")
        assert 3 in s.h.portal.chat_members(MARKETING)
        notice = QUEUED_KEY.format(f"{MEMBER_ID}:msg:660")
        assert await s.h.services.store.get_state(notice) is None  # cleaned up


async def test_a_quick_retry_needs_no_notice(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        s.h.portal.fail_next("im.chat.user.add", "INTERNAL_SERVER_ERROR", times=1)
        await s.say(3, "join marketing", message_id=670)
        await s.h.drain()
        [final] = s.replies
        assert final.message == "Welcome, Clara! You are now in “Marketing”."


async def test_a_retried_request_is_not_counted_twice(tmp_path: Path) -> None:
    """user.get fails once: the request runs again and must still fit a budget of one."""
    async with bot_stage(tmp_path, AUTOJOIN_BOT_USER_LIMIT="1") as s:
        s.h.portal.fail_next("user.get", "INTERNAL_SERVER_ERROR")
        await s.say(3, "join marketing", message_id=680)
        await s.h.drain()
        assert len(s.h.portal.calls_to("user.get")) == 2
        [reply] = s.replies
        assert reply.message == "Welcome, Clara! You are now in “Marketing”."


async def test_a_backlog_is_counted_by_arrival_not_by_when_it_is_worked_off(
    tmp_path: Path,
) -> None:
    """Three people asked 31 s apart while the worker was down: no minute saw three."""
    async with bot_stage(tmp_path, AUTOJOIN_BOT_GLOBAL_LIMIT="2") as s:
        for n, user in enumerate((2, 4, 5)):
            await s.say(user, "marketing", message_id=690 + n)
            s.h.clock.advance(31)
        await s.h.drain()
        assert {2, 4, 5} <= s.h.portal.chat_members(MARKETING)
        assert not any("too many requests" in r.message for r in s.replies)
