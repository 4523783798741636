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


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True, slots=True)
class ChatAdd:
    """A `chat.add` job's payload: one person into one chat, with the rules that asked.

    The department path, the bot and reconcile all build it here, so the worker groups
    their adds the same way (`group`: one `im.chat.user.add` per chat and history setting).
    """

    chat_id: int
    user_id: int
    hide_history: bool
    rules: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    accepted_at: float | None = None  # when the event arrived: event → membership latency

    def to_job(self, scope: str, event_key: str | None) -> NewJob:
        payload: dict[str, Any] = {
            "chat_id": self.chat_id,
            "user_id": self.user_id,
            "hide_history": self.hide_history,
            "rules": list(self.rules),
            "reasons": list(self.reasons),
        }
        if self.accepted_at is not None:
            payload["accepted_at"] = self.accepted_at
        return NewJob(
            ADD_TO_CHAT,
            payload,
            dedupe_key=f"{scope}:add:{self.chat_id}:{self.user_id}",
            event_key=event_key,
            group=f"{self.chat_id}:{'Y' if self.hide_history else 'N'}",
        )

    @classmethod
    def from_job(cls, job: Job) -> ChatAdd:
        p = job.payload
        accepted = p.get("accepted_at")
        return cls(
            int(p["chat_id"]),
            int(p["user_id"]),
            bool(p.get("hide_history", False)),
            _strings(p.get("rules")),
            _strings(p.get("reasons")),
            None if accepted is None else float(accepted),
        )


@dataclass(frozen=True, slots=True)
class ChatRemove:
    """A `chat.remove` job's payload; `forget` lists the ledger rows (rule, chat) it ends."""

    chat_id: int
    user_id: int
    rules: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    forget: tuple[tuple[str, int], ...] = ()

    def to_job(self, scope: str, event_key: str | None) -> NewJob:
        return NewJob(
            REMOVE_FROM_CHAT,
            {
                "chat_id": self.chat_id,
                "user_id": self.user_id,
                "rules": list(self.rules),
                "reasons": list(self.reasons),
                "forget": [[rule, chat] for rule, chat in self.forget],
            },
            dedupe_key=f"{scope}:remove:{self.chat_id}:{self.user_id}",
            event_key=event_key,
            group=f"{self.chat_id}:remove",
        )

    @classmethod
    def from_job(cls, job: Job) -> ChatRemove:
        p = job.payload
        forget = tuple((str(rule), int(chat)) for rule, chat in p.get("forget", []))
        return cls(
            int(p["chat_id"]),
            int(p["user_id"]),
            _strings(p.get("rules")),
            _strings(p.get("reasons")),
            forget,
        )


def audit_entry(
    job: Job, change: ChatAdd | ChatRemove, now: float, outcome: str, code: str | None = None
) -> AuditEntry:
    """The audit row of a membership job (add or remove)."""
    return AuditEntry(
        at=now,
        event_key=job.event_key,
        rule=",".join(change.rules) or None,
        chat_id=change.chat_id,
        user_id=change.user_id,
        hide_history=change.hide_history if isinstance(change, ChatAdd) else False,
        outcome=outcome,
        code=code,
        detail="; ".join(change.reasons) or None,
        job_id=job.id,
    )
