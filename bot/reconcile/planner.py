"""The plan: department rules + a snapshot of the portal + the ledger → changes per chat. Pure.

Adds. Each active person is matched like a new hire (`grants_for_departments`). For each chat
a rule in scope grants and the person is not in:

- `enforce` rules always want them in;
- `join_once` rules want them in only if the ledger has no row for (rule, chat, person) —
  someone the rule already added, or who was already a member, and left, stays out.

A person who is already in a granted chat gets a "present" ledger row per rule that has
none yet (`Plan.adopt`), so `join_once` will leave them alone if they later leave.

Removals. Only ledger rows that say a rule *added* someone can remove them, and only when:
the rule is an active `enforce` department rule in scope that still lists the chat, the
person is still a member, and no active department rule of the file grants them the chat any
more (they moved, or are no longer active). Hence deleting or disabling a rule, or taking a
chat off it, removes nobody; neither does a rule whose department name stopped resolving.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from bot.departments import DepartmentTree
from bot.reconcile.ledger import Ledger, present_key
from bot.reconcile.model import Change, ChatPlan, Plan, Snapshot
from bot.rules import ChatGrant, CompiledRules, Rule

INACTIVE = "not an active user any more"


def department_rules(
    compiled: CompiledRules, scope: Collection[str] | None = None
) -> dict[str, Rule]:
    """Active department rules by name, limited to `scope` when given."""
    return {
        r.name: r
        for r in compiled.rules
        if r.kind == "departments" and (scope is None or r.name in scope)
    }


def target_chats(rules: Mapping[str, Rule]) -> list[int]:
    return sorted({chat for rule in rules.values() for chat in rule.chats})


def plan_changes(
    snapshot: Snapshot,
    compiled: CompiledRules,
    ledger: Ledger,
    *,
    webhook_user: int,
    scope: Collection[str] | None = None,
) -> Plan:
    """What to change so membership follows the rules in `scope` (None: every rule)."""
    rules = department_rules(compiled, scope)
    chats = {
        chat: ChatPlan(chat, len(m) if (m := snapshot.members.get(chat)) is not None else None)
        for chat in target_chats(rules)
    }
    granted: set[tuple[int, int]] = set()
    adopt: list[tuple[str, int, int]] = []
    cache: dict[tuple[int, ...], list[ChatGrant]] = {}
    for person in sorted(snapshot.people.values(), key=lambda p: p.id):
        if not person.active:
            continue
        key = tuple(sorted(person.departments))
        grants = cache.get(key)
        if grants is None:
            grants = cache[key] = compiled.grants_for_departments(key)
        for grant in grants:
            granted.add((grant.chat_id, person.id))
            plan = chats.get(grant.chat_id)
            members = snapshot.members.get(grant.chat_id)
            pairs = [
                (r, why) for r, why in zip(grant.rules, grant.reasons, strict=True) if r in rules
            ]
            if plan is None or members is None or not pairs:
                continue
            uid, chat = person.id, grant.chat_id
            if uid in members:
                adopt += [
                    present_key(r, chat, uid) for r, _ in pairs if not ledger.handled(r, chat, uid)
                ]
                continue
            want = [
                (r, why)
                for r, why in pairs
                if rules[r].mode == "enforce" or not ledger.handled(r, chat, uid)
            ]
            if not want:
                plan.kept_out.append(uid)
                continue
            names, reasons = zip(*want, strict=True)
            plan.adds.append(Change(chat, uid, names, reasons, grant.hide_history))
    for (chat, uid), by in sorted(ledger.added.items()):
        plan = chats.get(chat)
        members = snapshot.members.get(chat)
        if plan is None or members is None or uid not in members or uid == webhook_user:
            continue
        found = snapshot.people.get(uid)
        if (chat, uid) in granted or (found is None and not snapshot.complete):
            continue
        enforcing = tuple(
            sorted(
                r
                for r in by
                if r in rules and rules[r].mode == "enforce" and chat in rules[r].chats
            )
        )
        if not enforcing:
            continue
        why = (
            INACTIVE
            if found is None or not found.active
            else _moved(found.departments, snapshot.tree)
        )
        plan.removes.append(Change(chat, uid, enforcing, (why,), forget=ledger.rows_for(chat, uid)))
    return Plan(
        chats,
        adopt,
        {c: code for c, code in snapshot.unreadable.items() if c in chats},
        sum(1 for p in snapshot.people.values() if p.active),
        {p.id: p.name for p in snapshot.people.values()},
        compiled.problems,
        snapshot.requests,
    )


def _moved(departments: tuple[int, ...], tree: DepartmentTree) -> str:
    """Departments by name and ID: a bare "(7)" means nothing to whoever reads the log."""
    if not departments:
        return "no active rule gives this chat to people without a department"
    where = ", ".join(map(tree.label, departments))
    noun = "department" if len(departments) == 1 else "departments"
    return f"no active rule gives this chat to their {noun} {where}"
