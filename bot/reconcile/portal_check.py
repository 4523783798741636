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

from collections.abc import Mapping
from typing import Any, Final

from bot.departments import DepartmentTree
from bot.errors import Problem
from bot.reconcile.progress import Progress
from bot.reconcile.reader import Notice, Reader, ReadResult
from bot.reconcile.session import Runtime, open_client
from bot.rest import PortalClient
from bot.rules import CompiledRules, RuleSet

ROLE_RANK: Final = {"none": 0, "member": 1, "manager": 2, "owner": 3}


def _role_issue(chat: int, role: str, needed: object, what: str) -> str | None:
    need = ROLE_RANK.get(str(needed)) if needed is not None else ROLE_RANK["member"]
    if need is None:
        return f"chat {chat}: unknown {what} permission {needed!r}; cannot tell who may do it"
    have = ROLE_RANK.get(role, 0)
    if have >= need:
        return None
    who = "is not a member of" if have == 0 else f"is only {role} in"
    verb = "adding" if what == "manage_users_add" else "removing"
    return (
        f"the webhook user {who} chat {chat}, and {verb} members needs {needed} "
        f"({what}); give the webhook user that role in the chat"
    )


def chat_issues(chat: int, result: ReadResult) -> tuple[str | None, str | None]:
    """(why adding fails, why removing fails) for one chat, from its `im.dialog.get` card."""
    key = f"c{chat}"
    if key in result.errors:
        error = result.errors[key]
        if error.code.upper() == "ACCESS_ERROR":
            message = (
                f"chat {chat} does not exist or the webhook user cannot see it (ACCESS_ERROR); "
                "check the ID and add the webhook user to the chat"
            )
        else:
            message = f"chat {chat}: im.dialog.get failed ({error.code})"
        return message, None
    card = result.calls.get(key)
    if not isinstance(card, Mapping):
        return f"chat {chat}: im.dialog.get gave no chat card", None
    role = str(card.get("role") or "none").lower()
    raw_permissions = card.get("permissions")
    permissions: Mapping[str, Any] = raw_permissions if isinstance(raw_permissions, Mapping) else {}
    restrictions = card.get("restrictions")
    general = card.get("type") == "general" or card.get("entity_type") == "GENERAL"
    if general:
        add: str | None = f"chat {chat} is the company-wide general chat, which takes no members"
    elif isinstance(restrictions, Mapping) and restrictions.get("extend") is False:
        add = f"chat {chat} takes no new members (its type forbids adding; ACCESS_ERROR)"
    else:
        add = _role_issue(chat, role, permissions.get("manage_users_add"), "manage_users_add")
    delete = _role_issue(chat, role, permissions.get("manage_users_delete"), "manage_users_delete")
    return add, delete


async def portal_problems(
    client: PortalClient, ruleset: RuleSet, notice: Notice | None = None
) -> tuple[list[Problem], int]:
    """Every problem the portal shows with these rules, and the requests it took."""
    rules = [r for r in ruleset.rules if r.enabled]
    chats = sorted({c for r in rules for c in r.chats})
    reader = Reader(client, notice=notice)
    calls = [(f"c{c}", "im.dialog.get", {"DIALOG_ID": f"chat{c}"}) for c in chats]
    result = await reader.read([("departments", "department.get", {})], calls)
    tree = DepartmentTree.from_rows(r for r in result.lists["departments"] if isinstance(r, dict))
    problems = list(CompiledRules.build(ruleset, tree).problems)
    issues = {chat: chat_issues(chat, result) for chat in chats}
    for rule in rules:
        for chat in rule.chats:
            add, delete = issues[chat]
            where = (ruleset.path, rule.line, 1)
            if add:
                problems.append(Problem(*where, f"rule {rule.name!r}: {add}"))
            if delete and rule.mode == "enforce" and rule.kind == "departments":
                problems.append(Problem(*where, f"rule {rule.name!r} (enforce): {delete}"))
    problems.sort(key=lambda p: (p.line, p.message))
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
