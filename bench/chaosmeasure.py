"""What one chaos seed did, read back from the portal's own records and the audit trail.

The portal is the judge: a membership exists when the portal made it (`Chat.joins`, with
the time), a reply was sent when the portal stored it (`messages`). The audit table is the
cross-check: it is what autojoin believes it did. Every figure is over all events, pushed and
pulled; lost and ack → member are also kept per intake.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from bench.chaosload import Delivery
from bench.chaosplan import INTAKES, PULLED, Ask, Planned, Stage
from bot.chatbot import texts
from bot.sandbox.state import Call, Message
from bot.store import open_store

QUEUED = texts.say("en", "queued")
FAULT = "INTERNAL_SERVER_ERROR"


@dataclass(frozen=True, slots=True)
class Kill:
    at: float  # seconds after the load started
    replica: int
    back_after: float  # seconds from the kill until it answered /healthz again


@dataclass(slots=True)
class IntakeFigures:
    """One intake's share: its events, what it lost, and its ack → member latencies."""

    events: int = 0
    lost: int = 0
    latencies: list[float] = field(default_factory=list)
    # pulled only: from publication at the portal (before any poll found it) to member
    from_published: list[float] = field(default_factory=list)


@dataclass(slots=True)
class SeedResult:
    seed: int
    events: int
    deliveries: int
    never_acked: int  # events no delivery of which got a 2xx
    refused: int  # deliveries answered 4xx (a bench bug, never expected)
    pairs: int  # memberships the acknowledged events must lead to
    lost: int  # acknowledged events with a membership that never appeared, or no answer
    missing_pairs: int
    added_twice: int  # pairs the portal made a member more than once
    audit_twice: int  # pairs with more than one `added` audit row
    audit_unadded: int  # members with no `added` row (added, then retried as already_member)
    repeat_add_calls: int  # successful add calls naming someone already a member
    wrong_history: int
    latencies: list[float]  # ack → member, seconds, one per membership that appeared
    asks: int
    answered: int
    unanswered: int  # acknowledged bot requests never answered (other than 'queued')
    duplicate_replies: int  # extra copies of a reply already sent for the same request
    answered_twice: int  # requests with at least one duplicate
    queued_notices: int
    reply_latencies: list[float]  # ack → first reply that is not the queued notice
    rejected: int  # QUERY_LIMIT_EXCEEDED answers
    faults: int  # requests the portal failed on purpose
    requests: int
    dead_jobs: int
    by_intake: dict[str, IntakeFigures] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    last_event_at: float = 0.0  # seconds after the load started
    settled_after: float = math.nan  # seconds from the last event until all was done
    seconds: float = 0.0  # the whole seed, wall time

    @property
    def last_kill_after_load(self) -> float:
        return self.kills[-1].at - self.last_event_at if self.kills else math.nan


def first_acks(
    deliveries: Iterable[Delivery], committed: dict[str, float] | None = None
) -> dict[int, float]:
    """Planned index → the unix time of the event's first 2xx (over its copies); a pulled
    event's is its commit (`committed`: handler key → first job's `created_at`)."""
    acks: dict[int, float] = {}
    for d in deliveries:
        acked = d.acked_at if not d.key else (committed or {}).get(d.key)
        if acked is not None:
            acks[d.index] = min(acked, acks.get(d.index, acked))
    return acks


def commit_times(database: str) -> dict[str, float]:
    """Handler key (`user:ID`, `msg:ID`) → when its event's first job was committed."""
    with closing(open_store(database, migrate=False)) as store:
        jobs = store.jobs(limit=1_000_000)
    times: dict[str, float] = {}
    for job in jobs:
        if job.event_key:
            key = ":".join(job.event_key.split(":")[-2:])
            times[key] = min(job.created_at, times.get(key, job.created_at))
    return times


def _ints(value: Any) -> list[int]:
    """USERS as JSON (a list) or as a batch command's PHP form (a dict, or one value)."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list | tuple):
        value = [value]
    return [int(v) for v in value]


def add_calls(calls: Sequence[Call]) -> Counter[tuple[int, int]]:
    """(chat, user) → successful `im.chat.user.add` calls naming them (batch commands too)."""
    counted: Counter[tuple[int, int]] = Counter()
    for call in calls:
        if call.method != "im.chat.user.add" or call.error is not None:
            continue
        params = {str(k).upper(): v for k, v in call.params.items()}
        for user in _ints(params.get("USERS", [])):
            counted[(int(params["CHAT_ID"]), user)] += 1
    return counted


V2_REPLIES = frozenset({"imbot.v2.Chat.Message.send", "imbot.v2.Command.answer"})


def reply_key(message: Message) -> tuple[str, int] | None:
    """Classic command answers name the request's message; every other reply (classic
    messages, v2 messages and command answers) goes to the author's private dialog."""
    if message.method == "imbot.command.answer" and message.message_id is not None:
        return ("message", message.message_id)
    private = message.dialog_id is not None and message.dialog_id.isdigit()
    if private and (message.method == "imbot.message.add" or message.method in V2_REPLIES):
        return ("author", int(str(message.dialog_id)))
    return None


def ask_key(planned: Planned) -> tuple[str, int]:
    """A pulled request is answered in the author's dialog whether message or command (every
    author asks once, so the dialog tells requests apart)."""
    ask = planned.event
    assert isinstance(ask, Ask)
    if ask.command and planned.intake != PULLED:
        return ("message", ask.message_id)
    return ("author", ask.author.id)


def measure(stage: Stage, deliveries: Sequence[Delivery], database: str, seed: int) -> SeedResult:
    portal = stage.portal
    with portal.lock:
        joins = {cid: list(chat.joins) for cid, chat in portal.state.chats.items()}
        hidden = {cid: dict(chat.history_hidden) for cid, chat in portal.state.chats.items()}
        messages = list(portal.state.messages)
        calls = list(portal.state.calls)
        counters = portal.state.counters
        rejected, requests = counters.rejected_rate_limit, counters.http_requests
    first_join: dict[tuple[int, int], float] = {}
    join_count: Counter[tuple[int, int]] = Counter()
    for cid, chat_joins in joins.items():
        for user, at in chat_joins:
            join_count[(cid, user)] += 1
            first_join.setdefault((cid, user), at)
    acks = first_acks(deliveries, commit_times(database))
    published = {d.index: d.published_at for d in deliveries if d.published_at is not None}
    replies = reply_figures(stage.plan, messages, acks)
    unanswered: set[int] = replies.pop("unanswered_indexes")
    pairs = lost = missing = wrong = 0
    latencies: list[float] = []
    by_intake = {name: IntakeFigures() for name in INTAKES}
    ours: set[tuple[int, int]] = set()
    for planned in stage.plan:
        share = by_intake[planned.intake]
        share.events += 1
        acked = acks.get(planned.index)
        if acked is None:
            continue
        gone = 0
        for chat, user, hide in stage.expected(planned.event):
            pairs += 1
            ours.add((chat, user))
            joined = first_join.get((chat, user))
            if joined is None:
                gone += 1
                continue
            latencies.append(max(0.0, joined - acked))
            share.latencies.append(latencies[-1])
            if planned.index in published:
                share.from_published.append(max(0.0, joined - published[planned.index]))
            wrong += hidden[chat].get(user) is not hide
        missing += gone
        if gone or planned.index in unanswered:
            lost += 1
            share.lost += 1
    repeats = add_calls(calls)
    with closing(open_store(database, migrate=False)) as store:
        history = store.history(limit=10 * pairs + 1000)
        dead = store.counts().get("dead", 0)
    audited = Counter((e.chat_id, e.user_id) for e in history if e.outcome == "added")
    return SeedResult(
        seed=seed,
        events=len(stage.plan),
        deliveries=len(deliveries),
        never_acked=sum(1 for p in stage.plan if p.index not in acks),
        refused=sum(1 for d in deliveries if d.refused),
        pairs=pairs,
        lost=lost,
        missing_pairs=missing,
        added_twice=sum(1 for pair in ours if join_count[pair] > 1),
        audit_twice=sum(1 for pair in ours if audited[pair] > 1),
        audit_unadded=sum(1 for pair in ours if pair in first_join and not audited[pair]),
        repeat_add_calls=sum(max(0, repeats[pair] - 1) for pair in ours),
        wrong_history=wrong,
        latencies=latencies,
        rejected=rejected,
        faults=sum(1 for c in calls if c.error == FAULT and not c.batch),
        requests=requests,
        dead_jobs=dead,
        unanswered=len(unanswered),
        by_intake=by_intake,
        **replies,
    )


def reply_figures(
    plan: Sequence[Planned], messages: Sequence[Message], acks: dict[int, float]
) -> dict[str, Any]:
    """Per bot request: its messages at the portal; the same text twice is a duplicate."""
    asks = {ask_key(p): p for p in plan if isinstance(p.event, Ask)}
    texts: dict[tuple[str, int], Counter[str]] = {key: Counter() for key in asks}
    first_reply: dict[tuple[str, int], float] = {}
    for message in messages:
        key = reply_key(message)
        if key not in texts:
            continue
        texts[key][message.message] += 1
        if message.message != QUEUED and key not in first_reply:
            first_reply[key] = message.at
    extra = {key: sum(n - 1 for n in seen.values()) for key, seen in texts.items()}
    latencies = [
        max(0.0, first_reply[key] - acks[p.index])
        for key, p in asks.items()
        if key in first_reply and p.index in acks
    ]
    return {
        "asks": len(asks),
        "answered": len(first_reply),
        "duplicate_replies": sum(extra.values()),
        "answered_twice": sum(1 for n in extra.values() if n),
        "queued_notices": sum(seen[QUEUED] for seen in texts.values()),
        "reply_latencies": latencies,
        "unanswered_indexes": {
            p.index for key, p in asks.items() if p.index in acks and key not in first_reply
        },
    }
