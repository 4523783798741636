"""Units of durable work: what handlers return, what the store keeps, what the worker runs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Job kinds are persisted; renaming one is a migration.
RESOLVE_USER: Final = "user.resolve"
ADD_TO_CHAT: Final = "chat.add"
REMOVE_FROM_CHAT: Final = "chat.remove"
BOT_REQUEST: Final = "bot.request"
BOT_REPLY: Final = "bot.reply"

PENDING: Final = "pending"
RUNNING: Final = "running"
DONE: Final = "done"
DEAD: Final = "dead"
STATES: Final = (PENDING, RUNNING, DONE, DEAD)

OUTCOMES: Final = ("added", "already_member", "dropped", "dead", "removed")


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: str
    payload: Mapping[str, Any]
    dedupe_key: str | None = None
    event_key: str | None = None
    group: str | None = None
    run_after: float = 0.0


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: Mapping[str, Any]
    state: str
    attempts: int
    run_after: float
    created_at: float
    updated_at: float
    dedupe_key: str | None = None
    event_key: str | None = None
    group: str | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    last_code: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    event_key: str | None
    rule: str | None
    chat_id: int
    user_id: int
    hide_history: bool
    outcome: str
    code: str | None = None
    detail: str | None = None
    job_id: int | None = None


def event_id(event_key: str | None) -> str:
    """A short, stable id for log lines: the same event and all its jobs share it."""
    if not event_key:
        return "-"
    return hashlib.sha256(event_key.encode("utf-8")).hexdigest()[:12]
