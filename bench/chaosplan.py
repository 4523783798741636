"""The chaos soak's stage and plan: a company, its rules, the events and the kills, all seeded.

Events are planned as what happens (a hire, a person asking the bot), not as request bodies:
the intake that delivers them (`bench/chaosload.py`) decides their wire form. Each planned
event names its intake: pushed (the portal POSTs it) or pulled (it appears at the portal and
the replicas fetch it: a Chatbots 2.0 fetch-mode message, or a hire only the hire poll sees).
A pulled hire is created at the portal at its planned time, with the next user ID, as a real
portal would; a pushed hire exists from the start (its ONUSERADD is what is timed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

from bench.workload import write_rules
from bot.sandbox import Chat, FakePortal, User
from bot.sandbox.company import WEBHOOK_USER_ID, generated_company

RATE, BURST = 2.0, 50  # the cloud portal's real limit, not time-scaled
EVERYONE_CHAT, TEAM_CHAT, LOUNGE_CHAT = 101, 102, 103
TEAM_DEPARTMENT = 2  # its hires also join TEAM_CHAT, with the history hidden
DEPARTMENTS = 8
FIRST_HIRE = 100_000
FIRST_POLLED_HIRE = 200_000  # above every pushed hire: the poll's cursor starts above those
FIRST_MESSAGE = 900_000
KEYWORD = "lounge"
PUSHED = "pushed"  # the classic outgoing webhook: the portal POSTs each event
PULLED = "pulled"  # Chatbots 2.0 fetch (`imbot.v2.Event.get`) and the hire poll (`user.get`)
INTAKES = (PUSHED, PULLED)


@dataclass(frozen=True, slots=True)
class Scale:
    """How big one seed's run is, and how hard it is shaken."""

    hires: int  # all hires, pushed and polled
    twice: int  # pushed hires whose ONUSERADD is delivered twice, once to each replica
    asks: int  # all bot requests ("join lounge" or `/join lounge`), pushed and pulled
    load_seconds: float  # events are spread over this long
    kill_every: tuple[float, float]  # seconds between kills, uniform
    restart_after: tuple[float, float]  # a killed replica is started again after this
    final_kill: tuple[float, float]  # the last kill, this long after the last event
    settle_limit: float  # seconds after the load to wait for everything to land
    lease_seconds: float | None  # AUTOJOIN_LEASE_SECONDS; None: the service's default
    polled_hires: int = 0  # of `hires`: created at the portal only, found by the hire poll
    pulled_asks: int = 0  # of `asks`: sent to the Chatbots 2.0 bot, fetched by the replicas
    hire_poll: float = 30.0  # AUTOJOIN_HIRE_POLL_SECONDS (default 300): short, to see the hires

    def scaled(self, factor: float) -> Scale:
        """Sizes and load duration times `factor` (kills keep their pace)."""
        if factor <= 0:
            raise ValueError("scale must be positive")
        return replace(
            self,
            hires=max(1, round(self.hires * factor)),
            twice=round(self.twice * factor),
            asks=round(self.asks * factor),
            polled_hires=round(self.polled_hires * factor),
            pulled_asks=round(self.pulled_asks * factor),
            load_seconds=max(5.0, self.load_seconds * factor),
        )


# The soak: 1,500 hires (150 twice), 60 bot requests, a kill every 15-25 s; of
# those, 300 hires only the hire poll sees and 20 requests the bot fetches.
FULL = Scale(1500, 150, 60, 120.0, (15.0, 25.0), (1.0, 3.0), (0.5, 2.0), 300.0, None, 300, 20)
# CI: a short lease so the kill after the last event is recovered from within seconds.
QUICK = Scale(60, 6, 4, 8.0, (3.0, 5.0), (1.0, 2.0), (0.3, 1.0), 40.0, 6.0, 12, 2, 5.0)


@dataclass(frozen=True, slots=True)
class Hire:
    user: User
    twice: bool


@dataclass(frozen=True, slots=True)
class Ask:
    """Someone asks the bot to join the lounge, by message or by the `/join` command."""

    author: User
    message_id: int
    command: bool


Event = Hire | Ask


@dataclass(frozen=True, slots=True)
class Planned:
    index: int
    at: float  # seconds after the load starts
    event: Event
    second_after: float | None = None  # a second delivery, to the other replica, this later
    intake: str = PUSHED


@dataclass(frozen=True, slots=True)
class Stage:
    portal: FakePortal
    rules: Path
    plan: list[Planned]
    kills: list[float]  # seconds after the load starts

    def expected(self, event: Event) -> list[tuple[int, int, bool]]:
        """(chat, user, history hidden) pairs the event must lead to."""
        if isinstance(event, Ask):
            return [(LOUNGE_CHAT, event.author.id, False)]
        pairs = [(EVERYONE_CHAT, event.user.id, False)]
        if TEAM_DEPARTMENT in event.user.departments:
            pairs.append((TEAM_CHAT, event.user.id, True))
        return pairs


def rules() -> list[dict[str, object]]:
    return [
        {"name": "everyone", "departments": [1], "chats": [EVERYONE_CHAT]},
        {
            "name": "team",
            "departments": [TEAM_DEPARTMENT],
            "include_subdepartments": False,
            "chats": [TEAM_CHAT],
            "hide_history": True,
        },
        {
            "name": "lounge",
            "keywords": [f"join {KEYWORD}", KEYWORD],
            "chats": [LOUNGE_CHAT],
            "reply": "Welcome, {first_name}! You are now in {chats}.",
        },
    ]


def make_stage(scale: Scale, seed: int, work: Path) -> Stage:
    """A generated company, the pushed hires already at the portal, three chats the webhook
    user owns; polled hires get their IDs in the order they will appear."""
    rng = random.Random(seed)
    state = generated_company(
        users=2 * scale.asks + 20, departments=DEPARTMENTS, chats=0, seed=seed
    )
    for chat_id, title in (
        (EVERYONE_CHAT, "Everyone"),
        (TEAM_CHAT, "Team"),
        (LOUNGE_CHAT, "Lounge"),
    ):
        state.add_chat(Chat(chat_id, title, owner=WEBHOOK_USER_ID))
    polled = min(scale.polled_hires, scale.hires)
    hires = [_hire(uid, rng) for uid in range(FIRST_HIRE, FIRST_HIRE + scale.hires - polled)]
    for user in hires:
        state.add_user(user)
    askers = [u for u in state.users.values() if u.active and u.id != WEBHOOK_USER_ID]
    if len(askers) < scale.asks:
        raise ValueError("not enough active people to ask the bot")
    twice = set(rng.sample(range(len(hires)), k=min(scale.twice, len(hires))))
    events: list[tuple[Event, str]] = [
        (Hire(user, i in twice), PUSHED) for i, user in enumerate(hires)
    ]
    # A polled hire's user (and ID) is settled below, once the times are known.
    events += [(Hire(_hire(0, rng), False), PULLED) for _ in range(polled)]
    pulled_asks = set(rng.sample(range(scale.asks), k=min(scale.pulled_asks, scale.asks)))
    events += [
        (Ask(author, FIRST_MESSAGE + i, command=i % 2 == 1), PULLED if i in pulled_asks else PUSHED)
        for i, author in enumerate(rng.sample(askers, k=scale.asks))
    ]
    times = sorted(rng.uniform(0.0, scale.load_seconds) for _ in events)
    rng.shuffle(events)
    plan: list[Planned] = []
    next_polled = FIRST_POLLED_HIRE
    for i, (at, (event, intake)) in enumerate(zip(times, events, strict=True)):
        if isinstance(event, Hire) and intake == PULLED:
            event = Hire(_numbered(event.user, next_polled), twice=False)
            next_polled += 1
        again = rng.uniform(0.1, 3.0) if isinstance(event, Hire) and event.twice else None
        plan.append(Planned(i, at, event, again, intake))
    portal = FakePortal(state, rate=RATE, burst=BURST)
    return Stage(portal, write_rules(work / "rules.yaml", rules()), plan, kill_times(scale, rng))


def _hire(uid: int, rng: random.Random) -> User:
    return User(
        uid, "Chaos", f"Hire{uid}", True, [rng.randint(2, DEPARTMENTS)], f"h{uid}@example.com"
    )


def _numbered(user: User, uid: int) -> User:
    return replace(user, id=uid, last_name=f"Hire{uid}", email=f"h{uid}@example.com")


def kill_times(scale: Scale, rng: random.Random) -> list[float]:
    """Every `kill_every` through the load, then one shortly after its last event."""
    kills: list[float] = []
    at = rng.uniform(*scale.kill_every)
    while at < scale.load_seconds:
        kills.append(at)
        at += rng.uniform(*scale.kill_every)
    kills.append(scale.load_seconds + rng.uniform(*scale.final_kill))
    return kills
