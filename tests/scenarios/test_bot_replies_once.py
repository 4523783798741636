"""Each bot reply is recorded right after its own portal call, so a crash or a pause in the
middle of a group of replies repeats none of those already sent.

The group is six replies claimed in one step: three `imbot.message.add` (answers to plain
messages) and three `imbot.command.answer` (answers to `/help`), counted at the fake portal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from bot.jobs import BOT_REPLY
from bot.sandbox import FakePortal
from bot.worker import PAUSE_KEY, PauseState
from tests.fakes import FakeClock, FakeCrashTransport
from tests.scenarios.bot_kit import BotStage, bot_stage
from tests.store.conftest import Backend, backend, pg_dsn

__all__ = ["backend", "pg_dsn"]  # fixtures used below

pytestmark = pytest.mark.anyio

REPLY_METHODS = ("imbot.message.add", "imbot.command.answer")
PEOPLE = (2, 3, 4, 5, 6, 7)


@asynccontextmanager
async def stage(
    tmp_path: Path, backend: Backend
) -> AsyncIterator[tuple[BotStage, FakeCrashTransport]]:
    clock = FakeClock()
    portal = FakePortal(clock=clock)
    crash = FakeCrashTransport(httpx.ASGITransport(app=portal.app), REPLY_METHODS)
    async with bot_stage(
        tmp_path, portal=portal, clock=clock, transport=crash, AUTOJOIN_DATABASE_URL=backend.url
    ) as s:
        yield s, crash


async def six_replies_due(s: BotStage) -> None:
    """Three people write something the bot does not know, three ask `/help`; the requests
    run, and six replies wait to be claimed together."""
    for n, user in enumerate(PEOPLE):
        if n < 3:
            response = await s.say(user, "good morning", message_id=600 + n)
        else:
            response = await s.command(user, "help", "", message_id=600 + n)
        assert response.status_code == 200
    worker = s.h.services.worker
    assert worker is not None
    assert await worker.step() == len(PEOPLE)  # the requests; their replies are next
    pending = await s.h.services.store.jobs(("pending",))
    assert [j.kind for j in pending] == [BOT_REPLY] * len(PEOPLE)
    assert s.replies == []


def assert_each_answered_once(s: BotStage) -> None:
    answered = Counter(
        m.dialog_id if m.method == "imbot.message.add" else f"command:{m.message_id}"
        for m in s.replies
    )
    expected = [str(user) for user in PEOPLE[:3]] + [f"command:{603 + n}" for n in range(3)]
    assert answered == Counter(expected)


async def test_a_crash_after_some_replies_of_a_group_repeats_none(
    tmp_path: Path, backend: Backend
) -> None:
    async with stage(tmp_path, backend) as (s, crash):
        await six_replies_due(s)
        worker = s.h.services.worker
        assert worker is not None
        with anyio.CancelScope() as killed:
            crash.arm(killed.cancel, survive=3)  # dies while sending the fourth reply
            await worker.step()
        assert crash.crashed
        assert len(s.replies) == 3
        restarted = s.h.replica("worker-restarted")
        s.h.clock.advance(worker.config.lease_seconds + 0.001)
        assert await restarted.step() == 3  # the rest, in one step
        assert await restarted.step() == 0
        assert_each_answered_once(s)


async def test_a_pause_after_some_replies_of_a_group_repeats_none(
    tmp_path: Path, backend: Backend
) -> None:
    """The portal stops answering at the fourth reply (a portal-wide error): the queue pauses
    and the unsent replies go back; the three sent are already recorded as done."""
    async with stage(tmp_path, backend) as (s, _):
        await six_replies_due(s)
        worker = s.h.services.worker
        assert worker is not None
        s.h.portal.fail_next("imbot.command.answer", "OVERLOAD_LIMIT")
        await worker.step()
        paused = PauseState.load(await s.h.services.store.get_state(PAUSE_KEY))
        assert paused is not None
        assert len(s.replies) == 3
        s.h.clock.advance(paused.next_probe - s.h.clock())
        await s.h.drain()  # the probe finds the portal back and the queue resumes
        assert await s.h.services.store.get_state(PAUSE_KEY) is None
        assert_each_answered_once(s)
