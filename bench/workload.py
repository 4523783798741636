"""Workloads shared by the benchmarks: generated rules files, hires and their event bodies.

Everything is seeded, so two runs (and the lead's rerun) measure the same work.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company
from bot.sandbox.events import APP_TOKEN, user_add
from bot.sandbox.state import User

FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}
FIRST_CHAT = 101  # generated_company numbers its chats 101, 102, …


def write_rules(path: Path, rules: Sequence[dict[str, Any]]) -> Path:
    """A rules.yaml the real loader accepts (it is loaded by `autojoin serve` as written)."""
    document = {"version": 1, "defaults": {"hide_history": False}, "rules": list(rules)}
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def chat_per_rule(chats: int, department: int = 1) -> list[dict[str, Any]]:
    """One rule per chat, all over `department`'s subtree: every hire gets every chat."""
    return [
        {"name": f"chat-{FIRST_CHAT + n}", "departments": [department], "chats": [FIRST_CHAT + n]}
        for n in range(chats)
    ]


def spread_rules(count: int, departments: int, chats: int, seed: int) -> list[dict[str, Any]]:
    """`count` subtree rules over random departments, 1–2 chats each; rule 0 covers the root."""
    rng = random.Random(seed)
    rules: list[dict[str, Any]] = [
        {"name": "everyone", "departments": [1], "chats": [FIRST_CHAT]},
    ]
    for n in range(1, count):
        picked = rng.sample(range(chats), k=min(chats, rng.choice((1, 1, 2))))
        rules.append(
            {
                "name": f"rule-{n}",
                "departments": [rng.randint(1, departments)],
                "chats": [FIRST_CHAT + c for c in sorted(picked)],
                "hide_history": rng.random() < 0.2,
            }
        )
    return rules


def hires(first_id: int, count: int, departments: int, seed: int) -> list[User]:
    """Active employees with distinct IDs, each in one random department of 1..departments."""
    rng = random.Random(seed)
    return [
        User(
            uid,
            "Bench",
            f"Hire{uid}",
            True,
            [rng.randint(1, departments)],
            f"hire.{uid}@example.com",
        )
        for uid in range(first_id, first_id + count)
    ]


def bodies(users: Sequence[User]) -> list[bytes]:
    """Real ONUSERADD bodies (PHP form encoding, the sandbox's application token)."""
    return [user_add(user, token=APP_TOKEN) for user in users]


def small_portal(departments: int = 50, chats: int = 5, seed: int = 7) -> FakePortal:
    return FakePortal(generated_company(users=20, departments=departments, chats=chats, seed=seed))


@contextmanager
def served(portal: FakePortal) -> Iterator[str]:
    """The portal under uvicorn in a thread; yields the webhook URL for `B24_WEBHOOK_URL`."""
    with portal.serve_in_thread() as base:
        yield portal.webhook_url(base)


def settings_env(
    *, webhook: str, rules: Path, database: str, rate: float = 2.0, burst: int = 50
) -> dict[str, str]:
    """The environment a benchmarked `autojoin` process runs with."""
    return {
        "B24_WEBHOOK_URL": webhook,
        "B24_APP_TOKEN": APP_TOKEN,
        "AUTOJOIN_RULES": str(rules),
        "AUTOJOIN_DATABASE_URL": database,
        "B24_RATE": repr(float(rate)),
        "B24_BURST": str(burst),
    }
