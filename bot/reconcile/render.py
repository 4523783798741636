"""Plans and sync results as text for people (JSON comes from `Plan.to_json`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.reconcile.chats import label
from bot.reconcile.model import Change, ChatCard, Plan, unreadable_message
from bot.rules import RuleSet


def _who(change: Change, names: Mapping[int, str]) -> str:
    name = names.get(change.user_id, "")
    return f"{change.user_id} {name}".rstrip()


def _listed(
    sign: str, changes: Sequence[Change], names: Mapping[int, str], limit: int
) -> list[str]:
    shown = changes if limit <= 0 else changes[:limit]
    lines = []
    for change in shown:
        why = "; ".join(change.reasons)
        hidden = ", history hidden" if sign == "+" and change.hide_history else ""
        lines.append(f"  {sign} {_who(change, names)}  [{', '.join(change.rules)}{hidden}] {why}")
    if len(changes) > len(shown):
        lines.append(f"  … and {len(changes) - len(shown)} more (--limit 0 shows all)")
    return lines


def render_plan(plan: Plan, ruleset: RuleSet, *, limit: int = 20) -> list[str]:
    titles = f", +{plan.card_requests} for chat titles" if plan.card_requests else ""
    lines = [
        f"Plan for {ruleset.path} (sha256 {ruleset.digest[:12]}): {plan.people} active people, "
        f"{len(plan.chats)} chats; {plan.reads} reads in {plan.requests} portal request(s) "
        f"(up to 50 reads to a batch request){titles}",
        "",
    ]
    for chat in plan.chats.values():
        if not chat.changed:
            continue
        counts = [
            f"+{len(chat.adds)}" if chat.adds else "",
            f"-{len(chat.removes)}" if chat.removes else "",
        ]
        lines.append(f"chat {label(chat.chat_id, plan.cards)}: {' '.join(c for c in counts if c)}")
        lines += _listed("+", chat.adds, plan.names, limit)
        lines += _listed("-", chat.removes, plan.names, limit)
    kept = sum(len(c.kept_out) for c in plan.chats.values())
    if kept:
        lines.append(
            f"{kept} people left a chat on their own and are not added again (join_once); "
            "`autojoin explain --user ID` shows who"
        )
    for chat_id, code in sorted(plan.unreadable.items()):
        lines.append(f"error: {unreadable_message(chat_id, code, plan.cards.get(chat_id))}")
    changed = sum(1 for c in plan.chats.values() if c.changed)
    if plan.changed:
        lines.append(
            f"Totals: {plan.add_count} to add, {plan.remove_count} to remove "
            f"in {changed} of {len(plan.chats)} chats."
        )
    else:
        lines.append(
            f"No changes: {len(plan.chats) - len(plan.unreadable)} chats follow the rules."
        )
    return lines


def render_results(
    rows: Mapping[int, Mapping[str, int]],
    requests: int,
    cards: Mapping[int, ChatCard] | None = None,
) -> list[str]:
    """One line per chat (`outcome → count`), then totals."""
    totals: dict[str, int] = {}
    lines = []
    for chat, counts in rows.items():
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()) if n)
        lines.append(f"chat {label(chat, cards or {})}: {parts}")
        for outcome, n in counts.items():
            totals[outcome] = totals.get(outcome, 0) + n
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(totals.items()) if n)
    lines.append(
        f"Done: {summary or 'nothing to do'} (the plan took {requests} portal request(s))."
    )
    return lines
