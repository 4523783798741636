"""The chaos soak's load: planned events delivered to whichever replica is up, until acknowledged.

A portal's delivery (here: a load balancer in front of two replicas) sends each event to a
replica that is up; a refused connection, a reset or a non-2xx answer is tried again on the
other one shortly after, as the real portal's retry or a balancer would. An event counts as
acknowledged at its first 2xx. Twice-delivered hires get their second copy at the other
replica a moment later.

Intakes: how an event reaches a replica; planned events name theirs. `PushedIntake`: the
portal POSTs form bodies to `/events`. `PulledIntake`: the event only happens at the portal
(a message or `/join` to the Chatbots 2.0 fetch-mode bot, a new user nobody pushes) and the
replicas find it by polling (`imbot.v2.Event.get`, `user.get`). Nothing answers a pulled event
with a 2xx: it counts as acknowledged when autojoin committed it (its first job's
`created_at`, read back after the run), which is also when the poller moves its offset or
cursor past it; the wait from publication to that commit is reported apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import httpx

from bench.chaosplan import KEYWORD, PULLED, PUSHED, Event, Hire, Planned
from bench.procs import Server
from bench.workload import FORM_HEADERS
from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, bot_command, bot_message, user_add

RETRY_PAUSE = 0.25  # seconds before an unacknowledged delivery is tried again
GIVE_UP = 90.0  # seconds after which a delivery counts as never acknowledged
TIMEOUT = 10.0


class Replicas:
    """The replicas and which of them is up now (the chaos thread flips `up`)."""

    def __init__(self, servers: Sequence[Server]) -> None:
        self.servers = list(servers)
        self.up = [False] * len(self.servers)

    def url(self, preferred: int) -> str | None:
        """The preferred replica's URL if it is up, else another's; None while all are down."""
        count = len(self.servers)
        for offset in range(count):
            index = (preferred + offset) % count
            if self.up[index]:
                return self.servers[index].url
        return None


@dataclass(frozen=True, slots=True)
class Bot:
    """What bot events need to name: the bot, its code, the `/join` command and the token."""

    bot_id: int
    code: str
    join_command: int
    client_id: str


@dataclass(slots=True)
class Delivery:
    index: int  # the planned event
    copy: int  # 0, or 1 for the second delivery of a twice-delivered hire
    acked_at: float | None = None  # unix time of the first 2xx (pulled: filled in later)
    status: str = ""  # what that 2xx said (accepted, duplicate), or `published` (pulled)
    published_at: float | None = None  # pulled: when the event appeared at the portal
    key: str = ""  # pulled: the handler's key (`user:ID`, `msg:ID`), to find its commit
    attempts: int = 0
    refused: str = ""  # a 4xx: the bench built a body the service will never take


class Intake(Protocol):
    name: str

    async def deliver(self, planned: Planned, copy: int, replicas: Replicas) -> Delivery: ...


class PushedIntake:
    """Classic outgoing-webhook events POSTed to `/events`, as the portal sends them."""

    name = PUSHED

    def __init__(self, http: httpx.AsyncClient, bot: Bot) -> None:
        self.http = http
        self.bot = bot

    def body(self, event: Event) -> bytes:
        if isinstance(event, Hire):
            return user_add(event.user, token=APP_TOKEN)
        bot = self.bot
        if event.command:
            return bot_command(
                bot_id=bot.bot_id, bot_code=bot.code, command="join", command_id=bot.join_command,
                command_params=KEYWORD, author=event.author, token=bot.client_id,
                message_id=event.message_id,
            )  # fmt: skip
        return bot_message(
            bot_id=bot.bot_id, bot_code=bot.code, text=f"join {KEYWORD}", author=event.author,
            token=bot.client_id, message_id=event.message_id,
        )  # fmt: skip

    async def deliver(self, planned: Planned, copy: int, replicas: Replicas) -> Delivery:
        body = self.body(planned.event)
        done = Delivery(planned.index, copy)
        target = (planned.index + copy) % len(replicas.servers)  # a copy goes to the other one
        deadline = time.monotonic() + GIVE_UP
        while time.monotonic() < deadline:
            url = replicas.url(target)
            if url is not None:
                done.attempts += 1
                try:
                    answer = await self.http.post(
                        url + "/events", content=body, headers=FORM_HEADERS
                    )
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    done.acked_at = time.time()
                    done.status = str(answer.json().get("status", ""))
                    return done
                if answer is not None and 400 <= answer.status_code < 500:
                    done.refused = f"HTTP {answer.status_code}: {answer.text[:200]}"
                    return done
            target += 1  # the other replica next time
            await anyio.sleep(RETRY_PAUSE)
        return done


class PulledIntake:
    """Events that only happen at the portal; the replicas' pollers have to find them."""

    name = PULLED

    def __init__(self, portal: FakePortal, v2_bot_id: int, plan: Sequence[Planned]) -> None:
        self.portal = portal
        self.bot_id = v2_bot_id
        # Polled hires in ID order, which is their planned order (see `make_stage`).
        self.hires = sorted(
            (p.event.user for p in plan if p.intake == PULLED and isinstance(p.event, Hire)),
            key=lambda u: u.id,
        )
        self.published: dict[int, float] = {}  # user id → unix time it appeared

    def hire(self, user_id: int) -> float:
        """Create every polled hire up to `user_id` not yet there, in ID order, so that IDs
        appear in ascending order even when two planned times fall together."""
        while self.hires and self.hires[0].id <= user_id:
            user = self.hires.pop(0)
            self.portal.stage.hire(
                id=user.id, name=user.name, last_name=user.last_name,
                departments=user.departments, email=user.email,
            )  # fmt: skip
            self.published[user.id] = time.time()
        return self.published[user_id]

    async def deliver(self, planned: Planned, copy: int, replicas: Replicas) -> Delivery:
        event = planned.event
        done = Delivery(planned.index, copy, attempts=1, status="published")
        if isinstance(event, Hire):
            done.published_at = self.hire(event.user.id)
            done.key = f"user:{event.user.id}"
            return done
        stage, author = self.portal.stage, event.author.id
        if event.command:
            happened = stage.command(self.bot_id, author, "join", KEYWORD)
        else:
            happened = stage.message(self.bot_id, author, f"join {KEYWORD}")
        done.published_at = time.time()
        done.key = f"msg:{happened.message_id}"
        return done


async def run_load(
    plan: Sequence[Planned], intakes: Mapping[str, Intake], replicas: Replicas, began: float
) -> list[Delivery]:
    """Deliver every planned event at its time after `began` (monotonic); wait for all."""
    deliveries: list[Delivery] = []

    async def one(planned: Planned, copy: int, at: float) -> None:
        await anyio.sleep(max(0.0, began + at - time.monotonic()))
        deliveries.append(await intakes[planned.intake].deliver(planned, copy, replicas))

    async with anyio.create_task_group() as group:
        for planned in plan:
            group.start_soon(one, planned, 0, planned.at)
            if planned.second_after is not None:
                group.start_soon(one, planned, 1, planned.at + planned.second_after)
    return deliveries
