"""`check --portal`: the rules against the live portal, before they fail in the queue.

One read (batched like every reconcile read) of the department tree and `im.dialog.get` for
every chat of an enabled rule, then per rule, at its line in the file:

- a chat that does not exist or that the webhook user cannot see;
- a chat that takes no new members (the general chat, `restrictions.extend` off);
- the webhook user's `role` below `permissions.manage_users_add` (member < manager < owner);
- for `enforce` department rules, the role below `permissions.manage_users_delete`;
- a department name that matches no department or several (the rule would be disabled).
"""

from __future__ import annotations

from bot.departments import DepartmentTree
from bot.errors import Problem
from bot.reconcile.chats import cards_from, dialog_call
from bot.reconcile.progress import Progress
from bot.reconcile.reader import Notice, Reader
from bot.reconcile.session import Runtime, open_client
from bot.rest import PortalClient
from bot.rules import CompiledRules, RuleSet


async def portal_problems(
    client: PortalClient, ruleset: RuleSet, notice: Notice | None = None
) -> tuple[list[Problem], int]:
    """Every problem the portal shows with these rules, and the requests it took."""
    rules = [r for r in ruleset.rules if r.enabled]
    chats = sorted({c for r in rules for c in r.chats})
    reader = Reader(client, notice=notice)
    calls = [dialog_call(c) for c in chats]
    result = await reader.read([("departments", "department.get", {})], calls)
    tree = DepartmentTree.from_rows(r for r in result.lists["departments"] if isinstance(r, dict))
    problems = list(CompiledRules.build(ruleset, tree).problems)
    cards = cards_from(result, chats)
    for rule in rules:
        for chat in rule.chats:
            card = cards[chat]
            where = (ruleset.path, *rule.spot("chats", chat))  # the entry, not the rule
            if card.add_problem:
                problems.append(Problem(*where, f"rule {rule.name!r}: {card.add_problem}"))
            enforce = rule.mode == "enforce" and rule.kind == "departments"
            if card.remove_problem and enforce:
                message = f"rule {rule.name!r} (enforce): {card.remove_problem}"
                problems.append(Problem(*where, message))
    problems.sort(key=lambda p: (p.line, p.col, p.message))
    return problems, reader.requests


async def run_check(runtime: Runtime, ruleset: RuleSet) -> int:
    """Print each portal problem as `file:line:col: message`; exit 1 if there is an error."""
    async with open_client(runtime) as client:
        note = Progress(runtime.err, "check --portal").note
        problems, requests = await portal_problems(client, ruleset, note)
    for problem in problems:
        runtime.print(str(problem))
    errors = sum(1 for p in problems if p.severity == "error")
    chats = len({c for r in ruleset.rules if r.enabled for c in r.chats})
    verdict = f"{errors} error(s)" if errors else "OK"
    runtime.print(
        f"{ruleset.path}: portal: {verdict}: {chats} chats and the department names checked "
        f"in {requests} requests, {len(problems) - errors} warning(s)"
    )
    return 1 if errors else 0
