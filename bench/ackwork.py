"""The stage for `bench/ack.py` with the worker on: a portal that knows the hires, and a count
of who landed where, made at the portal against an expectation computed here.

The expectation does not use autojoin's rule engine: a rule over department D grants its chats
to everyone in D's subtree (the rules file sets nothing else), read off the portal's own tree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.deliverywork import unfinished
from bench.load import Load, run_load
from bench.procs import LOOPBACK, Server, child_env, python
from bench.workload import bodies, settings_env
from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company
from bot.sandbox.state import PortalState, User

TIME_SCALE = 10.0  # the portal drains 10× faster; autojoin's B24_RATE is scaled with it
RATE, BURST = 2.0, 50
LAND_TIMEOUT = 180.0


@dataclass(frozen=True, slots=True)
class Stage:
    """A fresh portal holding every hire, and the chats each hire must end up in."""

    portal: FakePortal
    expected: Mapping[int, frozenset[int]]  # user id → chat ids

    def pairs(self, users: Sequence[User]) -> int:
        return sum(len(self.expected[u.id]) for u in users)

    def landed(self, users: Sequence[User]) -> int:
        """(chat, user) pairs of `users` that are members now, by the portal's own state."""
        chats = {c for u in users for c in self.expected[u.id]}
        members = {c: self.portal.chat_members(c) for c in chats}
        return sum(1 for u in users for c in self.expected[u.id] if u.id in members[c])


def expected_chats(
    departments: Sequence[int], rules: Sequence[Mapping[str, Any]], state: PortalState
) -> frozenset[int]:
    """Chats of every rule whose department is one of `departments` or above it."""
    lineage: set[int] = set()
    for dept in departments:
        node: int | None = dept
        while node is not None and node not in lineage:
            lineage.add(node)
            node = state.departments[node].parent if node in state.departments else None
    return frozenset(
        chat for rule in rules if lineage & set(rule["departments"]) for chat in rule["chats"]
    )


def make_stage(
    users: Sequence[User], rules: Sequence[Mapping[str, Any]], departments: int, chats: int
) -> Stage:
    state = generated_company(users=20, departments=departments, chats=chats, seed=7)
    for user in users:
        state.add_user(user)
    expected = {u.id: expected_chats(u.departments, rules, state) for u in users}
    return Stage(FakePortal(state, rate=RATE, burst=BURST, time_scale=TIME_SCALE), expected)


def serve_env(webhook: str, rules: Path, database: str) -> dict[str, str]:
    """`serve` with its worker: the rate scaled like the portal's clock, no reconcile pass
    (only event delivery reaches the portal)."""
    env = settings_env(webhook=webhook, rules=rules, database=database, rate=RATE * TIME_SCALE)
    env["AUTOJOIN_RECONCILE_MINUTES"] = "0"
    return env


def server(
    env: dict[str, str], work: Path, name: str, worker: bool, extra: Sequence[str] = ()
) -> Server:
    argv = python("-m", "bot", "serve", "--host", LOOPBACK, "--port", "{port}", *extra)
    if not worker:
        argv.append("--no-worker")
    return Server(argv, env=child_env(env), cwd=work, log=work / f"{name}.log")


def post(server_: Server, users: Sequence[User], concurrency: int, limit: float = 300.0) -> Load:
    """Post the users' ONUSERADD bodies; every 200 must say `accepted` (committed first)."""
    return run_load(
        server_.url + "/events",
        bodies(users),
        concurrency=concurrency,
        expect=b'"accepted"',
        time_limit=limit,
    )


def wait_landed(
    stage: Stage, users: Sequence[User], database: str, timeout: float = LAND_TIMEOUT
) -> tuple[int, float]:
    """Poll until every pair of `users` is a member and no job is left, or `timeout`;
    return the pairs that landed and the seconds it took (NaN-free: the time waited)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    want = stage.pairs(users)
    while True:
        landed = stage.landed(users)
        if landed == want and unfinished(database) == 0:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return landed, time.perf_counter() - started


def read_rules(path: Path) -> list[dict[str, Any]]:
    """The rules as written by `bench.workload.write_rules` (plain YAML)."""
    document = yaml.safe_load(path.read_text())
    return list(document["rules"])
