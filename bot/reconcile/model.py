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
class ChatCard:
    """What the portal says about one chat, for the webhook user. `seen` is False when the
    card could not be read; then `add_problem` says why."""

    chat_id: int
    title: str = ""
    members: int | None = None
    role: str = "none"
    add_problem: str | None = None
    remove_problem: str | None = None
    seen: bool = True

    @property
    def label(self) -> str:
        """`101 “Sales all-hands”`, or the bare ID when the title is unknown."""
        return f"{self.chat_id} “{self.title}”" if self.title else str(self.chat_id)


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
    reads: int = 0  # REST commands behind `requests` (50 to a batch request)
    cards: dict[int, ChatCard] = field(default_factory=dict)  # titles of the chats shown
    card_requests: int = 0  # requests it took to read `cards`

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
            self.reads,
            self.cards,
            self.card_requests,
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
            card = self.cards.get(chat.chat_id)
            chats.append(
                {
                    "chat_id": chat.chat_id,
                    "title": card.title if card is not None else "",
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
            "title_requests": self.card_requests,
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
                {
                    "chat_id": chat,
                    "code": code,
                    "message": unreadable_message(chat, code, self.cards.get(chat)),
                }
                for chat, code in sorted(self.unreadable.items())
            ],
            "warnings": [str(p) for p in self.problems],
        }


def unreadable_message(chat_id: int, code: str, card: ChatCard | None = None) -> str:
    """Why a member list could not be read, in the words `check --portal` uses: an empty
    list means a chat that does not exist, one the webhook user cannot see, or one it is
    not in, and the chat's card tells these apart."""
    if card is not None and not card.seen and card.add_problem:
        return card.add_problem
    if card is not None and card.role == "none":
        return (
            f"chat {card.label}: the webhook user is not a member, so the member list cannot "
            "be read; add the webhook user to the chat"
        )
    if code == "MEMBER_LIST_UNREADABLE":
        return (
            f"chat {chat_id}: the member list came back without the webhook user (a chat that "
            "does not exist, or one it is not in); `autojoin check --portal` tells which"
        )
    return f"chat {chat_id}: the member list could not be read ({code})"
