"""`check` validates rules.yaml offline; `departments` prints the portal's tree for rule authors."""

from __future__ import annotations

import argparse
import stat
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from bot.departments import DepartmentTree
from bot.errors import Problem
from bot.reconcile.portal_check import run_check
from bot.reconcile.session import Runtime
from bot.rest import LeakyBucket, PortalClient
from bot.rules import check_rules
from bot.settings import Settings


def register(sub: Any) -> None:
    check = sub.add_parser("check", help="validate rules.yaml; prints file:line:col for each error")
    check.add_argument("path", nargs="?", help="rules file (default: AUTOJOIN_RULES or rules.yaml)")
    check.add_argument(
        "--portal",
        action="store_true",
        help="also check chats, the webhook user's roles and department names on the portal",
    )
    check.set_defaults(func=cmd_check)
    departments = sub.add_parser("departments", help="print the portal's department tree with IDs")
    departments.set_defaults(func=cmd_departments)


def cmd_check(args: argparse.Namespace) -> int:
    settings = Settings.load() if args.portal or not args.path else None
    if args.portal and settings is not None:
        settings.require(webhook=True)  # before any output: nothing is half-checked
    path = Path(args.path) if args.path else settings.rules_path if settings else Path()
    ruleset, problems = check_rules(path)
    problems = problems + secrets_warnings(Path(".env"))
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem)
    if errors or ruleset is None:
        print(f"{path}: {len(errors)} error(s)")
        return 1
    kinds = {"departments": 0, "keywords": 0}
    for rule in ruleset.rules:
        kinds[rule.kind] += 1
    enabled = sum(1 for rule in ruleset.rules if rule.enabled)
    chats = len({chat for rule in ruleset.rules for chat in rule.chats})
    warnings = len(problems) - len(errors)
    summary = (
        f"{len(ruleset.rules)} rules ({enabled} enabled; "
        f"{kinds['departments']} department, {kinds['keywords']} keyword) "
        f"into {chats} chats, {warnings} warning(s)"
    )
    if not args.portal:
        print(f"{path}: OK: {summary}")
    else:  # "OK" only once the portal has had its say too
        print(f"{path}: {summary}; now checking against the portal")
        assert settings is not None
        code: int = anyio.run(run_check, Runtime(settings), ruleset)
        return code
    return 0


def secrets_warnings(path: Path) -> list[Problem]:
    """`.env` holds the webhook code and tokens; rules.yaml holds no secret, so it may be read."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if not mode & stat.S_IROTH:
        return []
    message = (
        f"Every user of this machine can read {path}, which holds the webhook code and the "
        f"tokens (mode {stat.S_IMODE(mode):o}); make it private with: chmod 600 {path}"
    )
    return [Problem(str(path), 1, 1, message, severity="warning")]


def render_tree(tree: DepartmentTree) -> list[str]:
    lines: list[str] = []
    roots = [
        d for d in tree.ids if tree.parent(d) is None or not tree.contains(tree.parent(d) or 0)
    ]
    stack = [(root, 0) for root in sorted(roots, reverse=True)]
    while stack:
        dept, depth = stack.pop()
        lines.append(f"{'  ' * depth}{dept:>5}  {tree.name(dept)}")
        children = sorted((c for c in tree.ids if tree.parent(c) == dept), reverse=True)
        stack.extend((child, depth + 1) for child in children)
    return lines


def cmd_departments(args: argparse.Namespace) -> int:
    settings = Settings.load()
    webhook = settings.require_webhook()

    async def fetch() -> DepartmentTree:
        async with httpx.AsyncClient(timeout=10.0) as http:
            bucket = LeakyBucket(
                settings.burst, settings.rate, clock=time.monotonic, sleep=anyio.sleep
            )
            client = PortalClient(http, webhook, bucket=bucket)
            rows = await client.call_list("department.get", {})
            return DepartmentTree.from_rows(rows)

    tree = anyio.run(fetch)
    for line in render_tree(tree):
        print(line)
    return 0
