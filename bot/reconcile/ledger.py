"""The ledger: which rule has already dealt with whom in which chat, and how.

A row is (rule, chat, user). The chat key's sign says what happened:

- positive chat ID — the rule **added** the person (the `chat.add` executor writes these on
  `added`). Only these rows can ever lead to a removal, so people added by hand, or already
  in the chat when a rule first met them, are never removed.
- negative chat ID — the person was **already a member** when the rule first applied to them
  (written by `sync` and the scheduled reconcile, and seeded from `already_member` audit rows).

Both kinds mean "handled" for `join_once`: whoever leaves later is not added again. Portal
chat IDs are positive, so the two kinds cannot collide and the existing table needs no
migration. The first reconcile that writes seeds the ledger from the audit trail once, so
people added before the ledger existed are known too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.jobs import AuditEntry
from bot.store.aio import AsyncStore

SEEDED_KEY = "reconcile.ledger_seeded"
SEED_LIMIT = 50_000_000  # audit rows read once for the seed: all of them, in practice

Pair = tuple[int, int]  # (chat_id, user_id)


def present_key(rule: str, chat_id: int, user_id: int) -> tuple[str, int, int]:
    """The ledger row saying `user_id` was already in `chat_id` when `rule` first applied."""
    return (rule, -abs(chat_id), user_id)


@dataclass(slots=True)
class Ledger:
    added: dict[Pair, set[str]] = field(default_factory=dict)
    present: dict[Pair, set[str]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int, int]]) -> Ledger:
        ledger = cls()
        for rule, chat, user in rows:
            table = ledger.added if chat > 0 else ledger.present
            table.setdefault((abs(chat), user), set()).add(rule)
        return ledger

    def handled(self, rule: str, chat_id: int, user_id: int) -> bool:
        pair = (chat_id, user_id)
        return rule in self.added.get(pair, ()) or rule in self.present.get(pair, ())

    def added_by(self, chat_id: int, user_id: int) -> set[str]:
        return self.added.get((chat_id, user_id), set())

    def rows_for(self, chat_id: int, user_id: int) -> tuple[tuple[str, int], ...]:
        """Every row of the pair as (rule, chat key): what a removal must forget."""
        pair = (chat_id, user_id)
        rows = [(r, chat_id) for r in sorted(self.added.get(pair, ()))]
        rows += [(r, -chat_id) for r in sorted(self.present.get(pair, ()))]
        return tuple(rows)

    def chats_of(self, user_id: int) -> set[int]:
        return {c for (c, u) in (*self.added, *self.present) if u == user_id}


def seed_rows(entries: Sequence[AuditEntry], names: Iterable[str]) -> list[tuple[str, int, int]]:
    """Ledger rows implied by the audit trail's `added` and `already_member` entries.

    An audit row names its rules comma-joined; a name that is itself a known rule is kept
    whole, so a rule with a comma in its name survives.
    """
    known = set(names)
    rows: list[tuple[str, int, int]] = []
    for entry in entries:
        if entry.outcome not in ("added", "already_member") or not entry.rule:
            continue
        rules = [entry.rule] if entry.rule in known else entry.rule.split(",")
        for rule in (r for r in rules if r):
            if entry.outcome == "added":
                rows.append((rule, entry.chat_id, entry.user_id))
            else:
                rows.append(present_key(rule, entry.chat_id, entry.user_id))
    return rows


async def load_ledger(
    store: AsyncStore, names: Iterable[str], now: float, *, write: bool
) -> Ledger:
    """The ledger, seeded from the audit at first use (`write=False` seeds in memory only)."""
    rows = [(rule, chat, user) for rule, chat, user, _ in await store.ledger()]
    if await store.get_state(SEEDED_KEY) is None:
        seed = seed_rows(await store.history(limit=SEED_LIMIT), names)
        if write:
            await store.ledger_add(seed, now)
            await store.set_state(SEEDED_KEY, str(len(seed)), now)
        rows.extend(seed)
    return Ledger.from_rows(rows)
