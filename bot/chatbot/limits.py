"""Request budgets for the chat bot: per person and for the whole portal, shared by processes.

Each budget is a log of admitted requests in one store state key, changed with the store's
atomic `update_state`, so two workers cannot both spend the last slot. Requests are counted
by when they arrived, not when the worker got to them: a backlog after an outage is not a
burst of abuse. A request is logged under its event key, so a retried request finds itself
and is not counted twice. Someone over budget is told once per window; further requests in
that window are dropped silently, so a flood of messages cannot become a flood of replies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

WINDOW = 60.0
KEEP = 2 * WINDOW  # entries older than this (by arrival) no longer matter to anyone
USER_KEY = "bot.limit.user:{}"
GLOBAL_KEY = "bot.limit.global"

Verdict = Literal["ok", "limited", "busy"]


class StateStore(Protocol):
    """The one store method budgets need (`AsyncStore` has it)."""

    async def update_state(
        self, key: str, fn: Callable[[str | None], str | None], now: float
    ) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    notify: bool = False  # tell the person (first refusal in this window)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def _load(raw: str | None, now: float) -> tuple[dict[str, float], float]:
    """Arrival times of recent admitted requests, and until when the person has been told."""
    try:
        state = json.loads(raw) if raw else {}
        log = {str(k): float(t) for k, t in dict(state.get("log", {})).items()}
        told = float(state.get("told", 0.0))
    except (ValueError, TypeError, AttributeError):
        log, told = {}, 0.0  # unreadable: start afresh rather than refuse everyone
    return {k: t for k, t in log.items() if now - t < KEEP}, told


def _near(log: dict[str, float], at: float) -> int:
    """Admitted requests that arrived less than a window before or after this one."""
    return sum(1 for t in log.values() if abs(t - at) < WINDOW)


def _dump(log: dict[str, float], told: float, now: float) -> str | None:
    if not log and told <= now:
        return None  # nothing to remember: the key is deleted
    return json.dumps({"log": log, "told": told}, separators=(",", ":"))


async def admit(
    store: StateStore,
    user_id: int,
    request: str,
    arrived: float,
    now: float,
    *,
    per_user: int,
    overall: int,
) -> Admission:
    """Count `request` (arrived at `arrived`) against the person's and the portal's budget
    per minute (0 = no limit)."""
    outcome: list[Admission] = []

    def person(raw: str | None) -> str | None:
        log, told = _load(raw, now)
        if request in log:
            outcome[:] = [Admission("ok")]
        elif per_user and _near(log, arrived) >= per_user:
            outcome[:] = [Admission("limited", notify=told <= now)]
            told = max(told, now + WINDOW)
        else:
            log[request] = arrived
            outcome[:] = [Admission("ok")]
        return _dump(log, told, now)

    await store.update_state(USER_KEY.format(user_id), person, now)
    if not outcome[0].ok or not overall:
        return outcome[0]
    busy: list[bool] = []

    def portal(raw: str | None) -> str | None:
        log, told = _load(raw, now)
        busy[:] = [request not in log and _near(log, arrived) >= overall]
        if not busy[0]:
            log[request] = arrived
        return _dump(log, told, now)

    await store.update_state(GLOBAL_KEY, portal, now)
    if not busy[0]:
        return outcome[0]

    def uncount(raw: str | None) -> str | None:
        """The portal refused: give the person their slot back, and tell them once."""
        log, told = _load(raw, now)
        log.pop(request, None)
        outcome[:] = [Admission("busy", notify=told <= now)]
        return _dump(log, max(told, now + WINDOW), now)

    await store.update_state(USER_KEY.format(user_id), uncount, now)
    return outcome[0]
