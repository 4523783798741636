"""The chaos soak's plan and judgement, without processes (the run itself is a slow test in
`tests/test_bench_processes.py`): what the figures rely on is that the plan is what the
issue describes and that the portal's records are read right."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from bench.__main__ import parse_args
from bench.chaosload import PulledIntake, Replicas
from bench.chaosmeasure import QUEUED, add_calls, first_acks, reply_figures
from bench.chaosplan import (
    FULL,
    PULLED,
    PUSHED,
    QUICK,
    TEAM_CHAT,
    TEAM_DEPARTMENT,
    Ask,
    Hire,
    Planned,
    kill_times,
    make_stage,
)
from bot.sandbox import FakePortal, Message

pytestmark = pytest.mark.anyio


def test_the_plan_is_seeded_and_has_the_issues_shape(tmp_path: Path) -> None:
    first, again = make_stage(QUICK, 3, tmp_path), make_stage(QUICK, 3, tmp_path)
    assert [(p.at, p.event, p.second_after) for p in first.plan] == [
        (p.at, p.event, p.second_after) for p in again.plan
    ]
    hires = [p for p in first.plan if isinstance(p.event, Hire)]
    people = [p.event.user for p in first.plan if isinstance(p.event, Hire)]
    asks = [p.event for p in first.plan if isinstance(p.event, Ask)]
    assert len(hires) == QUICK.hires
    assert sum(1 for p in hires if p.second_after is not None) == QUICK.twice
    assert len(asks) == QUICK.asks
    assert {a.command for a in asks} == {True, False}
    assert len({a.author.id for a in asks}) == len(asks)  # replies are told apart by author
    assert all(0 <= p.at <= QUICK.load_seconds for p in first.plan)
    assert [p.at for p in first.plan] == sorted(p.at for p in first.plan)
    team = next(u for u in people if TEAM_DEPARTMENT in u.departments)
    assert (TEAM_CHAT, team.id, True) in first.expected(Hire(team, twice=False))
    pushed = [p.event.user for p in first.plan if isinstance(p.event, Hire) and p.intake == PUSHED]
    polled = [p.event.user for p in first.plan if isinstance(p.event, Hire) and p.intake == PULLED]
    assert len(polled) == QUICK.polled_hires
    assert sum(1 for p in first.plan if isinstance(p.event, Ask) and p.intake == PULLED) == (
        QUICK.pulled_asks
    )
    assert all(p.second_after is None for p in hires if p.intake == PULLED)  # nothing to resend
    assert all(first.portal.state.users[u.id].active for u in pushed)  # they exist at the portal
    assert not any(u.id in first.portal.state.users for u in polled)  # these appear on time
    # The poll's cursor only moves up: polled IDs rise with time, above every pushed hire.
    assert [u.id for u in polled] == sorted(u.id for u in polled)
    assert min(u.id for u in polled) > max(u.id for u in pushed)


def test_kills_run_through_the_load_and_once_just_after_it() -> None:
    kills = kill_times(FULL, random.Random(4))
    *during, last = kills
    gaps = [b - a for a, b in zip([0.0, *during], during, strict=False)]
    assert len(during) >= 4
    assert all(FULL.kill_every[0] <= g <= FULL.kill_every[1] for g in gaps)
    assert all(at < FULL.load_seconds for at in during)
    assert FULL.final_kill[0] <= last - FULL.load_seconds <= FULL.final_kill[1]


def test_scaling_keeps_the_kill_pace() -> None:
    small = FULL.scaled(0.1)
    assert (small.hires, small.twice, small.asks) == (150, 15, 6)
    assert (small.polled_hires, small.pulled_asks) == (30, 2)
    assert small.load_seconds == 12.0
    assert small.kill_every == FULL.kill_every
    with pytest.raises(ValueError, match="positive"):
        FULL.scaled(0)


async def test_add_calls_are_counted_from_json_and_batch_commands() -> None:
    portal = FakePortal(burst=1000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app), base_url=portal.webhook_url()
    ) as rest:
        await rest.post("im.chat.user.add", json={"CHAT_ID": 101, "USERS": [4, 5]})
        cmd = {
            "a": "im.chat.user.add?CHAT_ID=101&USERS[]=4",
            "b": "im.chat.user.add?CHAT_ID=103&USERS=4",
        }
        await rest.post("batch", json={"cmd": cmd})
        portal.fail_next("im.chat.user.add", "INTERNAL_SERVER_ERROR")
        await rest.post("im.chat.user.add", json={"CHAT_ID": 101, "USERS": [5]})
    assert add_calls(portal.calls_to("im.chat.user.add")) == {(101, 4): 2, (101, 5): 1, (103, 4): 1}


def _asks(plan: list[Planned], intake: str, command: bool) -> Planned:
    return next(
        p
        for p in plan
        if isinstance(p.event, Ask) and p.intake == intake and p.event.command is command
    )


def test_a_reply_sent_again_is_a_duplicate_a_queued_notice_is_not(tmp_path: Path) -> None:
    scale = replace(QUICK, asks=8, pulled_asks=4)
    stage = make_stage(scale, 1, tmp_path)
    by_message = _asks(stage.plan, PUSHED, command=False)
    by_command = _asks(stage.plan, PUSHED, command=True)
    v2_command = _asks(stage.plan, PULLED, command=True)
    v2_message = _asks(stage.plan, PULLED, command=False)
    assert isinstance(by_message.event, Ask)
    assert isinstance(by_command.event, Ask)
    assert isinstance(v2_command.event, Ask)
    dialog = str(by_message.event.author.id)

    def sent(
        method: str, text: str, at: float, dialog: str | None = None, mid: int | None = None
    ) -> Message:
        return Message(0, method, 7, dialog, text, "c", message_id=mid, at=at)

    v2_dialog = str(v2_command.event.author.id)
    messages = [
        sent("imbot.message.add", QUEUED, 110.0, dialog=dialog),
        sent("imbot.message.add", "Welcome!", 130.0, dialog=dialog),
        sent("imbot.message.add", "Welcome!", 131.0, dialog=dialog),  # re-sent after a crash
        sent("imbot.command.answer", "Welcome!", 104.0, mid=by_command.event.message_id),
        sent("imbot.message.add", "Welcome!", 104.0, dialog="chat5"),  # nobody's request
        # v2 answers (the portal numbers the message): both go to the author's dialog
        sent("imbot.v2.Command.answer", "Welcome!", 105.0, dialog=v2_dialog, mid=1),
        sent("imbot.v2.Chat.Message.send", "Welcome!", 106.0, dialog=v2_dialog),
    ]
    acks = {p.index: 100.0 + i for i, p in enumerate([by_message, by_command, v2_command])}
    acks[v2_message.index] = 100.0  # acknowledged (published), never answered
    figures = reply_figures(stage.plan, messages, acks)
    assert figures["asks"] == scale.asks
    assert (figures["answered"], figures["duplicate_replies"], figures["answered_twice"]) == (
        3,
        2,
        2,
    )
    assert figures["queued_notices"] == 1
    assert sorted(figures["reply_latencies"]) == [3.0, 3.0, 30.0]
    assert figures["unanswered_indexes"] == {v2_message.index}


async def test_pulled_hires_appear_at_the_portal_in_id_order(tmp_path: Path) -> None:
    """Two polled hires due together: whichever task runs first creates both, lower ID first,
    so the hire poll's cursor (the highest ID seen) never skips one."""
    stage = make_stage(QUICK, 2, tmp_path)
    polled = [p for p in stage.plan if p.intake == PULLED and isinstance(p.event, Hire)]
    early, late = polled[0], polled[1]
    assert isinstance(early.event, Hire)
    assert isinstance(late.event, Hire)
    intake = PulledIntake(stage.portal, v2_bot_id=0, plan=stage.plan)
    replicas = Replicas([])
    second = await intake.deliver(late, 0, replicas)
    assert list(stage.portal.state.users)[-2:] == [early.event.user.id, late.event.user.id]
    first = await intake.deliver(early, 0, replicas)
    assert first.published_at is not None
    assert second.published_at is not None
    assert first.published_at <= second.published_at
    assert (first.status, second.status) == ("published", "published")
    # acknowledged only once autojoin commits it: found by its handler's key afterwards
    assert (first.acked_at, first.key) == (None, f"user:{early.event.user.id}")
    committed = {f"user:{early.event.user.id}": 50.0}
    assert first_acks([first, second], committed) == {early.index: 50.0}
    assert stage.portal.state.users[early.event.user.id].departments == (
        early.event.user.departments
    )


def test_seeds_and_scale_are_read_from_the_command_line() -> None:
    args = parse_args(["--only", "chaos", "--seeds", "3,5", "--scale", "0.5"])
    assert (args.seeds, args.scale) == ((3, 5), 0.5)
    assert parse_args([]).seeds == ()
    with pytest.raises(SystemExit):
        parse_args(["--seeds", "one"])
