"""What `autojoin plan` must do, built from the existing pieces, as a child process.

Until `bot/commands/plan.py` exists, `bench/plan.py` runs this in a subprocess (so its peak
RSS is autojoin's alone, not the benchmark's or the fake portal's): fetch every user
(`user.get` pages of 50, 50 pages per `batch`), the department tree (`DepartmentDirectory`,
as the worker does), the member list of every target chat (`im.chat.user.list`, 50 per
`batch`), then evaluate the rules for every active user and count the adds a plan would
list. Settings come from the environment like any autojoin command. Prints one JSON line.

    B24_WEBHOOK_URL=… AUTOJOIN_RULES=… python -m bench.planwork
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import httpx

from bench.procs import status_kib
from bot.departments import DepartmentDirectory
from bot.rest import MAX_BATCH, LeakyBucket, OperatingGuard, PortalClient
from bot.rules import CompiledRules, load_rules
from bot.settings import Settings

Command = tuple[str, Mapping[str, Any]]


async def batched(client: PortalClient, commands: Sequence[Command]) -> list[Any]:
    """Results of `commands` in order, sent 50 to a `batch`; a failed sub-call raises."""
    results: list[Any] = []
    for start in range(0, len(commands), MAX_BATCH):
        chunk = {f"c{i}": command for i, command in enumerate(commands[start : start + MAX_BATCH])}
        reply = await client.batch(chunk)
        if reply.errors:
            raise next(iter(reply.errors.values()))
        results += [reply.result.get(key) for key in chunk]
    return results


async def all_users(client: PortalClient) -> list[Mapping[str, Any]]:
    first = await client.call("user.get", {"start": 0})
    rows = list(first.result or [])
    total = first.total or len(rows)
    pages = [("user.get", {"start": s}) for s in range(50, total, 50)]
    for page in await batched(client, pages):
        rows += list(page or [])
    return rows


def _ints(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [int(v) for v in items if str(v).isdigit()]


async def plan(settings: Settings) -> dict[str, Any]:
    waited = 0.0

    async def sleep(seconds: float) -> None:
        nonlocal waited
        waited += seconds
        await anyio.sleep(seconds)

    began = time.perf_counter()
    ruleset = load_rules(settings.rules_path)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as http:
        bucket = LeakyBucket(settings.burst, settings.rate, clock=time.time, sleep=sleep)
        client = PortalClient(
            http,
            settings.require_webhook(),
            bucket=bucket,
            operating=OperatingGuard(clock=time.time),
        )
        users = await all_users(client)
        tree = await DepartmentDirectory(client, clock=time.time).refresh()
        compiled = CompiledRules.build(ruleset, tree)
        chats = compiled.chats()
        lists = await batched(client, [("im.chat.user.list", {"CHAT_ID": c}) for c in chats])
    fetched = time.perf_counter()
    members = {chat: set(_ints(found)) for chat, found in zip(chats, lists, strict=True)}
    grants = adds = evaluated = 0
    for user in users:
        if str(user.get("ACTIVE")).lower() not in {"true", "1", "y"}:
            continue
        departments = _ints(user.get("UF_DEPARTMENT") or [])
        if not departments:
            continue
        evaluated += 1
        uid = int(user["ID"])
        for grant in compiled.grants_for_departments(departments):
            grants += 1
            adds += uid not in members.get(grant.chat_id, set())
    done = time.perf_counter()
    return {
        "users": len(users),
        "evaluated": evaluated,
        "departments": len(tree),
        "rules": len(compiled.rules),
        "chats": len(chats),
        "grants": grants,
        "planned_adds": adds,
        "seconds": done - began,
        "fetch_seconds": fetched - began,
        "evaluate_seconds": done - fetched,
        "bucket_wait": waited,
        "vmhwm_kib": status_kib(os.getpid(), "VmHWM"),
    }


def main() -> int:
    settings = Settings.load()
    result = anyio.run(plan, settings)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
