"""One reconcile pass end to end, without side effects: read the portal, build the plan.

Full pass (`plan`, `sync`, the daily scheduled pass), for U active users, D departments and
C target chats, with P_u = max(1, ceil(U/50)) and P_d = max(1, ceil(D/50)):

    requests = 1 + ceil((P_u - 1 + P_d - 1 + max(0, C - 48)) / 50)

— the first batch carries the first page of `user.get` (FILTER ACTIVE) and of
`department.get` and 48 `im.chat.user.list`; the rest follows 50 commands a request. When the
plan would remove someone who is missing from the active list, their `user.get` rows are read
by ID (50 IDs a command) before the plan is final, so a user who slipped between two pages
while the list was read is never removed: + ceil(ceil(G/50)/50) requests for G such people.

Incremental pass (scheduled): `user.get` FILTER `>TIMESTAMP_X` (active or not) and the tree
in the same way, then the member lists of just the chats those people touch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.departments import DepartmentTree
from bot.reconcile.ledger import Ledger
from bot.reconcile.model import Person, Plan, Snapshot
from bot.reconcile.planner import department_rules, plan_changes
from bot.reconcile.reader import Command, Reader, ReadResult
from bot.rest import MAX_BATCH
from bot.rules import CompiledRules, RuleSet

USER_FIELDS = ["ID", "ACTIVE", "NAME", "LAST_NAME", "UF_DEPARTMENT", "TIMESTAMP_X"]
BY_ID = {"sort": "ID", "order": "ASC"}  # offset paging needs a stable order (also the default)


def members_call(chat_id: int) -> Command:
    return (f"m{chat_id}", "im.chat.user.list", {"CHAT_ID": chat_id})


def rule_chats(ruleset: RuleSet, scope: Collection[str] | None = None) -> list[int]:
    """Chats of enabled department rules, known before the tree is (names resolve later)."""
    return sorted(
        {
            chat
            for rule in ruleset.rules
            if rule.enabled and rule.kind == "departments" and (scope is None or rule.name in scope)
            for chat in rule.chats
        }
    )


def parse_members(
    result: ReadResult, chats: Iterable[int], webhook_user: int
) -> tuple[dict[int, frozenset[int]], dict[int, str]]:
    """A member list without the webhook user is unreadable, never empty (reference §3.3)."""
    members: dict[int, frozenset[int]] = {}
    unreadable: dict[int, str] = {}
    for chat in chats:
        key = members_call(chat)[0]
        if key in result.errors:
            unreadable[chat] = result.errors[key].code
            continue
        value = result.calls.get(key)
        ids = {int(v) for v in value if str(v).isdigit()} if isinstance(value, list) else set()
        if webhook_user not in ids:
            unreadable[chat] = "MEMBER_LIST_UNREADABLE"
        else:
            members[chat] = frozenset(ids)
    return members, unreadable


def people_of(rows: Iterable[Any]) -> dict[int, Person]:
    found = (Person.from_row(row) for row in rows if isinstance(row, Mapping))
    return {p.id: p for p in found if p is not None}


def newest(people: Iterable[Person], before: str | None = None) -> str | None:
    """The latest TIMESTAMP_X seen (compared as instants, kept as the portal wrote it)."""
    best, best_at = before, _instant(before)
    for person in people:
        at = _instant(person.stamp)
        if at is not None and (best_at is None or at > best_at):
            best, best_at = person.stamp, at
    return best


def since_filter(stamp: str) -> str:
    """`>TIMESTAMP_X` value: one second before the cursor, so a same-second change is kept."""
    at = _instant(stamp)
    return stamp if at is None else (at - timedelta(seconds=1)).isoformat()


def _instant(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


async def read_full(reader: Reader, chats: Sequence[int], webhook_user: int) -> Snapshot:
    """Every active user, the tree and the member lists of `chats`, in the fewest requests."""
    params = {"FILTER": {"ACTIVE": True}, "select": USER_FIELDS, **BY_ID}
    lists = [("users", "user.get", params), ("departments", "department.get", {})]
    result = await reader.read(lists, [members_call(c) for c in chats])
    people = {i: p for i, p in people_of(result.lists["users"]).items() if p.active}
    members, unreadable = parse_members(result, chats, webhook_user)
    tree = DepartmentTree.from_rows(r for r in result.lists["departments"] if isinstance(r, dict))
    return Snapshot(
        people, tree, members, unreadable, True, reader.requests, newest(people.values())
    )


async def read_people(reader: Reader, ids: Sequence[int]) -> dict[int, Person]:
    """`user.get` rows by ID, active or not (50 IDs a command)."""
    calls: list[Command] = [
        (f"p{i}", "user.get", {"FILTER": {"ID": list(ids[i : i + MAX_BATCH])}})
        for i in range(0, len(ids), MAX_BATCH)
    ]
    result = await reader.read([], calls)
    for error in result.errors.values():
        raise error
    return people_of(
        row for page in result.calls.values() if isinstance(page, list) for row in page
    )


async def full_plan(
    reader: Reader,
    ruleset: RuleSet,
    ledger: Ledger,
    *,
    webhook_user: int,
    scope: Collection[str] | None = None,
) -> tuple[Plan, Snapshot, CompiledRules]:
    """Read everything and plan; confirms the absence of anyone the plan would remove."""
    snapshot = await read_full(reader, rule_chats(ruleset, scope), webhook_user)
    compiled = CompiledRules.build(ruleset, snapshot.tree)
    plan = plan_changes(snapshot, compiled, ledger, webhook_user=webhook_user, scope=scope)
    missing = sorted({c.user_id for c in plan.removes() if c.user_id not in snapshot.people})
    if missing:
        back = {i: p for i, p in (await read_people(reader, missing)).items() if p.active}
        if back:
            people = {**snapshot.people, **back}
            snapshot = dataclasses.replace(snapshot, people=people)
            plan = plan_changes(snapshot, compiled, ledger, webhook_user=webhook_user, scope=scope)
    plan.requests, plan.reads = reader.requests, reader.reads
    return plan, dataclasses.replace(snapshot, requests=reader.requests), compiled


async def changed_plan(
    reader: Reader,
    ruleset: RuleSet,
    ledger: Ledger,
    since: str,
    *,
    webhook_user: int,
    scope: Collection[str],
) -> tuple[Plan, Snapshot, CompiledRules]:
    """Plan for the people changed since `since` only (the scheduled incremental pass)."""
    params = {"FILTER": {">TIMESTAMP_X": since_filter(since)}, "select": USER_FIELDS, **BY_ID}
    lists = [("users", "user.get", params), ("departments", "department.get", {})]
    result = await reader.read(lists, [])
    people = people_of(result.lists["users"])
    tree = DepartmentTree.from_rows(r for r in result.lists["departments"] if isinstance(r, dict))
    compiled = CompiledRules.build(ruleset, tree)
    targets = {c for rule in department_rules(compiled, scope).values() for c in rule.chats}
    touched: set[int] = set()
    for person in people.values():
        if person.active:
            touched |= {g.chat_id for g in compiled.grants_for_departments(person.departments)}
        touched |= {chat for (chat, user) in ledger.added if user == person.id}
    chats = sorted(touched & targets)
    members: dict[int, frozenset[int]] = {}
    unreadable: dict[int, str] = {}
    if chats:
        read = await reader.read([], [members_call(c) for c in chats])
        members, unreadable = parse_members(read, chats, webhook_user)
    snapshot = Snapshot(
        people, tree, members, unreadable, False, reader.requests, newest(people.values(), since)
    )
    plan = plan_changes(snapshot, compiled, ledger, webhook_user=webhook_user, scope=scope)
    # chats nobody changed in were not read: they are neither unreadable nor part of this plan
    plan.chats = {c: p for c, p in plan.chats.items() if c in members or c in unreadable}
    plan.requests = reader.requests
    return plan, snapshot, compiled
