"""`explain`: why one person is, or is not, in each chat — also behind the bot's `/why`.

`build_explanation` is pure (portal data, rules, ledger and queue in; an `Explanation` out)
and reuses the planner, so what it says about a chat is exactly what the next `sync` would
do. `explain_user` gathers the inputs in two or three requests; `render_explanation` prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bot.departments import DepartmentTree
from bot.jobs import DEAD, PENDING, RUNNING, AuditEntry, Job
from bot.reconcile.chats import cards_from, dialog_call
from bot.reconcile.engine import members_call, parse_members, people_of
from bot.reconcile.ledger import Ledger, load_ledger
from bot.reconcile.model import ChatCard, Person, Plan, Snapshot, unreadable_message
from bot.reconcile.planner import plan_changes
from bot.reconcile.reader import Notice, Reader
from bot.rest import PortalClient
from bot.rules import CompiledRules, RuleSet
from bot.store.aio import AsyncStore


@dataclass(frozen=True, slots=True)
class DepartmentLine:
    id: int
    path: str  # root first: "Example Corp / Sales / Sales DACH"
    chain: tuple[str, ...]  # labels from the department up to the root


@dataclass(frozen=True, slots=True)
class RuleLine:
    name: str
    mode: str
    chats: tuple[int, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChatLine:
    chat_id: int
    rules: tuple[str, ...]  # rules that give this person the chat now
    member: bool | None  # None: the member list could not be read
    status: str
    ledger: tuple[str, ...]
    state: str  # one of STATES: `status` for programs (the bot words it per language)
    title: str = ""  # as the portal names the chat; empty when its card could not be read


STATES = ("unreadable", "will_add", "kept_out", "will_remove", "member", "kept", "outside")


@dataclass(frozen=True, slots=True)
class JobLine:
    id: int
    kind: str
    chat_id: int | None
    state: str
    attempts: int
    code: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Explanation:
    user_id: int
    name: str
    active: bool | None  # None: the portal does not know this user
    departments: tuple[DepartmentLine, ...]
    rules: tuple[RuleLine, ...]
    keyword_rules: tuple[RuleLine, ...]  # keyword rules this person may use to self-join
    chats: tuple[ChatLine, ...]
    jobs: tuple[JobLine, ...]
    history: tuple[AuditEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_explanation(
    user_id: int,
    person: Person | None,
    tree: DepartmentTree,
    compiled: CompiledRules,
    members: Mapping[int, frozenset[int]],
    unreadable: Mapping[int, str],
    ledger: Ledger,
    jobs: Sequence[Job],
    history: Sequence[AuditEntry],
    *,
    webhook_user: int,
    cards: Mapping[int, ChatCard] | None = None,
) -> Explanation:
    departments = person.departments if person else ()
    cards = cards or {}
    grants = compiled.grants_for_departments(departments) if person and person.active else []
    by_rule: dict[str, tuple[list[int], list[str]]] = {}
    for grant in grants:
        for rule, why in zip(grant.rules, grant.reasons, strict=True):
            chats, reasons = by_rule.setdefault(rule, ([], []))
            chats.append(grant.chat_id)
            if why not in reasons:
                reasons.append(why)
    rules = tuple(
        RuleLine(name, _mode(compiled, name), tuple(chats), tuple(reasons))
        for name, (chats, reasons) in by_rule.items()
    )
    keyword = tuple(
        RuleLine(r.name, r.mode, r.chats, ())
        for r in compiled.rules
        if r.kind == "keywords" and person and person.active and compiled.allowed(r, departments)
    )
    people = {user_id: person} if person else {}
    snapshot = Snapshot(people, tree, members, unreadable, complete=False)
    plan = plan_changes(snapshot, compiled, ledger, webhook_user=webhook_user)
    granted = {g.chat_id: g.rules for g in grants}
    open_chats = {int(j.payload["chat_id"]) for j in jobs if "chat_id" in j.payload}
    shown = sorted(set(granted) | ledger.chats_of(user_id) | open_chats)
    lines = []
    for chat in shown:
        member = None if chat not in members else user_id in members[chat]
        state, status = _status(chat, user_id, member, granted, plan, unreadable)
        if state == "unreadable":  # the same diagnosis as plan and check --portal
            why = unreadable_message(chat, unreadable.get(chat, ""), cards.get(chat))
            status = f"member list unreadable: {why}"
        book = _ledger(ledger, chat, user_id)
        line = ChatLine(chat, granted.get(chat, ()), member, status, book, state)
        card = cards.get(chat)
        lines.append(dataclasses.replace(line, title=card.title if card else ""))
    return Explanation(
        user_id,
        person.name if person else "",
        person.active if person else None,
        tuple(
            DepartmentLine(d, tree.path_names(d), tuple(map(tree.label, tree.ancestors(d))))
            for d in departments
        ),
        rules,
        keyword,
        tuple(lines),
        tuple(_job(job) for job in jobs),
        tuple(history),
    )


def _mode(compiled: CompiledRules, name: str) -> str:
    rule = compiled.rule(name)
    return rule.mode if rule else "?"


def _status(
    chat: int,
    user_id: int,
    member: bool | None,
    granted: Mapping[int, tuple[str, ...]],
    plan: Plan,
    unreadable: Mapping[int, str],
) -> tuple[str, str]:
    """(state, status): one of `STATES`, and the same in words for the admin."""
    chat_plan = plan.chats.get(chat)
    if member is None:
        return "unreadable", f"member list unreadable ({unreadable.get(chat, 'not read')})"
    if chat_plan is not None:
        if any(c.user_id == user_id for c in chat_plan.adds):
            return "will_add", "not a member: the next sync adds them"
        if user_id in chat_plan.kept_out:
            return "kept_out", "not a member: left on their own, not added again (join_once)"
        for change in chat_plan.removes:
            if change.user_id == user_id:
                why = "; ".join(change.reasons)
                return "will_remove", f"member: the next sync removes them ({why})"
    if member:
        if chat in granted:
            return "member", "member"
        return "kept", "member; no rule gives it now, so it is kept"
    return "outside", "not a member; no rule gives this chat"


def _ledger(ledger: Ledger, chat: int, user_id: int) -> tuple[str, ...]:
    added = [f"added by {r}" for r in sorted(ledger.added.get((chat, user_id), ()))]
    present = [
        f"already a member when {r} applied"
        for r in sorted(ledger.present.get((chat, user_id), ()))
    ]
    return tuple(added + present)


def _job(job: Job) -> JobLine:
    chat = job.payload.get("chat_id")
    return JobLine(
        job.id,
        job.kind,
        int(chat) if chat is not None else None,
        job.state,
        job.attempts,
        job.last_code,
        job.last_error,
    )


def _named(chat: int, titles: Mapping[int, str]) -> str:
    title = titles.get(chat)
    return f"{chat} “{title}”" if title else str(chat)


def render_explanation(e: Explanation) -> list[str]:
    titles = {c.chat_id: c.title for c in e.chats if c.title}
    state = {True: "active", False: "not active", None: "unknown to the portal"}[e.active]
    lines = [f"User {e.user_id} {e.name} ({state})".replace("  ", " ")]
    lines.append("Departments:" if e.departments else "Departments: none")
    lines += [f"  {d.path}   [{' ← '.join(d.chain)}]" for d in e.departments]
    lines.append("Rules that match:" if e.rules else "Rules that match: none")
    for r in e.rules:
        chats = ", ".join(_named(c, titles) for c in r.chats)
        lines.append(f"  {r.name} ({r.mode}) → chat {chats}: {'; '.join(r.reasons)}")
    if e.keyword_rules:
        offered = ", ".join(
            f"{r.name} (chat {', '.join(map(str, r.chats))})" for r in e.keyword_rules
        )
        lines.append(f"Keyword rules open to them: {offered}")
    lines.append("Chats:" if e.chats else "Chats: none")
    for c in e.chats:
        extra = f"  [{', '.join(c.rules)}]" if c.rules else ""
        book = f"  ledger: {'; '.join(c.ledger)}" if c.ledger else ""
        lines.append(f"  chat {_named(c.chat_id, titles)}: {c.status}{extra}{book}")
    if e.jobs:
        lines.append("Queued or failed work:")
        for j in e.jobs:
            code = f" [{j.code}] {j.error or ''}" if j.code else ""
            lines.append(f"  job {j.id} {j.kind} chat {j.chat_id}: {j.state}{code}".rstrip())
    if e.history:
        lines.append("Recent history:")
        for h in e.history:
            when = datetime.fromtimestamp(h.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            code = f" [{h.code}]" if h.code else ""
            chat = _named(h.chat_id, titles)
            lines.append(f"  {when}  {h.outcome:<14} chat {chat} ({h.rule or '-'}){code}")
    return lines


async def explain_user(
    client: PortalClient,
    store: AsyncStore,
    ruleset: RuleSet,
    user_id: int,
    *,
    tree: DepartmentTree | None = None,
    history: int = 20,
    notice: Notice | None = None,
) -> Explanation:
    """Gather everything `build_explanation` needs for one person and build it.

    Pass a cached `tree` (the worker's `DepartmentDirectory`) to skip reading it: then it
    takes two requests, the user and the member lists of the chats that concern them.
    """
    reader = Reader(client, notice=notice)
    user_call = ("user", "user.get", {"FILTER": {"ID": user_id}})
    lists: list[tuple[str, str, dict[str, Any]]] = []
    if tree is None:
        lists.append(("departments", "department.get", {}))
    first = await reader.read(lists, [user_call])
    if "user" in first.errors:
        raise first.errors["user"]
    page = first.calls.get("user")
    person = people_of(page if isinstance(page, list) else []).get(user_id)
    if tree is None:
        tree = DepartmentTree.from_rows(
            r for r in first.lists["departments"] if isinstance(r, dict)
        )
    compiled = CompiledRules.build(ruleset, tree)
    ledger = await load_ledger(store, [r.name for r in ruleset.rules], 0.0, write=False)
    jobs = [
        job
        for job in await store.jobs((PENDING, RUNNING, DEAD), limit=1_000_000)
        if str(job.payload.get("user_id", "")) == str(user_id)
    ]
    departments = person.departments if person and person.active else ()
    chats = {g.chat_id for g in compiled.grants_for_departments(departments)}
    chats |= ledger.chats_of(user_id)
    chats |= {int(j.payload["chat_id"]) for j in jobs if "chat_id" in j.payload}
    # the chats' cards ride in the same batch as their member lists, for their titles
    calls = [members_call(c) for c in sorted(chats)] + [dialog_call(c) for c in sorted(chats)]
    read = await reader.read([], calls)
    members, unreadable = parse_members(read, sorted(chats), client.webhook.user_id)
    cards = cards_from(read, sorted(chats))
    entries = await store.history(user_id=user_id, limit=history)
    return build_explanation(
        user_id,
        person,
        tree,
        compiled,
        members,
        unreadable,
        ledger,
        jobs,
        entries,
        webhook_user=client.webhook.user_id,
        cards=cards,
    )
