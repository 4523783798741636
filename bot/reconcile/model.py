"""What a reconcile pass reads and what it decides: people, a portal snapshot, and the plan.

Plain values only, so the planner stays pure and `plan --format json` is a direct dump.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.departments import DepartmentTree, departments_of, positive_id
from bot.errors import AutojoinError, Problem


class ReadError(AutojoinError):
    """The portal's answers do not add up (a list changed while it was paged); run again."""


@dataclass(frozen=True, slots=True)
class Person:
    """One `user.get` row, reduced to what rules and reports need."""

    id: int
    name: str
    active: bool
    departments: tuple[int, ...]
    stamp: str = ""  # TIMESTAMP_X exactly as the portal sent it

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Person | None:
        ident = positive_id(row.get("ID"))
        if ident is None:
            return None
        departments = departments_of(row)
        name = " ".join(str(row.get(k) or "").strip() for k in ("NAME", "LAST_NAME")).strip()
        stamp = row.get("TIMESTAMP_X")
        return cls(ident, name, _flag(row.get("ACTIVE")), departments, str(stamp or ""))


def _flag(value: object) -> bool:
    """`ACTIVE` is a JSON boolean on the portal; tolerate "Y"/"1"/"true" from older answers."""
    if isinstance(value, str):
        return value.strip().upper() in {"Y", "1", "TRUE"}
    return value is True or value == 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The portal as one pass saw it.

    `complete` means `people` holds every active user, so someone missing is not active; an
    incremental pass only holds the people who changed, and says nothing about the others.
    A chat is in exactly one of `members` (readable) and `unreadable` (code why).
    """

    people: Mapping[int, Person]
    tree: DepartmentTree
    members: Mapping[int, frozenset[int]]
    unreadable: Mapping[int, str]
    complete: bool
    requests: int = 0
    newest_stamp: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One person to add to or remove from one chat, and the rules that ask for it."""

    chat_id: int
    user_id: int
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    hide_history: bool = False
    forget: tuple[tuple[str, int], ...] = ()  # removals: ledger rows (rule, chat key) to drop


@dataclass(slots=True)
class ChatPlan:
    chat_id: int
    members: int | None
    adds: list[Change] = field(default_factory=list)
    removes: list[Change] = field(default_factory=list)
    kept_out: list[int] = field(default_factory=list)  # join_once: left on their own

    @property
    def changed(self) -> bool:
        return bool(self.adds or self.removes)


@dataclass(slots=True)
class Plan:
    chats: dict[int, ChatPlan]
    adopt: list[tuple[str, int, int]]  # ledger rows for people found already in the chat
    unreadable: dict[int, str]
    people: int
    names: dict[int, str]
    problems: tuple[Problem, ...] = ()
    requests: int = 0

    def adds(self) -> Iterator[Change]:
        for chat in self.chats.values():
            yield from chat.adds

    def removes(self) -> Iterator[Change]:
        for chat in self.chats.values():
            yield from chat.removes

    @property
    def add_count(self) -> int:
        return sum(len(c.adds) for c in self.chats.values())

    @property
    def remove_count(self) -> int:
        return sum(len(c.removes) for c in self.chats.values())

    @property
    def changed(self) -> bool:
        return any(chat.changed for chat in self.chats.values())

    def without_removals(self) -> Plan:
        chats = {
            i: ChatPlan(c.chat_id, c.members, list(c.adds), [], list(c.kept_out))
            for i, c in self.chats.items()
        }
        return Plan(
            chats,
            self.adopt,
            self.unreadable,
            self.people,
            self.names,
            self.problems,
            self.requests,
        )

    def to_json(self) -> dict[str, Any]:
        def person(change: Change) -> dict[str, Any]:
            row: dict[str, Any] = {
                "user_id": change.user_id,
                "name": self.names.get(change.user_id, ""),
                "rules": list(change.rules),
                "reasons": list(change.reasons),
            }
            return row

        chats = []
        for chat in self.chats.values():
            adds = [person(c) | {"hide_history": c.hide_history} for c in chat.adds]
            chats.append(
                {
                    "chat_id": chat.chat_id,
                    "members": chat.members,
                    "add": adds,
                    "remove": [person(c) for c in chat.removes],
                    "kept_out": list(chat.kept_out),
                    "counts": {
                        "add": len(chat.adds),
                        "remove": len(chat.removes),
                        "kept_out": len(chat.kept_out),
                    },
                }
            )
        return {
            "people": self.people,
            "requests": self.requests,
            "chats": chats,
            "totals": {
                "add": self.add_count,
                "remove": self.remove_count,
                "kept_out": sum(len(c.kept_out) for c in self.chats.values()),
                "adopt": len(self.adopt),
                "chats": len(self.chats),
                "chats_changed": sum(1 for c in self.chats.values() if c.changed),
            },
            "errors": [
                {"chat_id": chat, "code": code, "message": unreadable_message(chat, code)}
                for chat, code in sorted(self.unreadable.items())
            ],
            "warnings": [str(p) for p in self.problems],
        }


def unreadable_message(chat_id: int, code: str) -> str:
    if code == "MEMBER_LIST_UNREADABLE":
        return (
            f"chat {chat_id}: the member list came back without the webhook user; "
            "add the webhook user to the chat"
        )
    return f"chat {chat_id}: the member list could not be read ({code})"
