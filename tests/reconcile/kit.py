"""Reconcile scenarios: generated companies, rules files, and commands run in-process.

Commands run through the real parser and their async `run_*` on a `Runtime` that points at
the harness: its fake clock (rate limiting costs no wall time), the fake portal's transport
and the harness's store.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.cli import build_parser
from bot.reconcile.schedule import Reconciler
from bot.reconcile.session import Runtime
from tests.harness import Harness

RULES_HEAD = {"version": 1, "defaults": {"hide_history": False}}


class TtyInput(io.StringIO):
    """Standard input that claims to be a terminal, with the operator's answer queued."""

    def isatty(self) -> bool:
        return True


def write_rules(path: Path, rules: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({**RULES_HEAD, "rules": rules}, sort_keys=False))
    return path


def generated_rules(count: int, departments: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` department rules, one chat each (101, 102, …), a quarter of them `enforce`.

    Departments come from the lower half of the generated tree so each rule covers a few
    dozen people, not the whole company.
    """
    rng = random.Random(seed)
    rules = []
    for i in range(count):
        rule: dict[str, Any] = {
            "name": f"rule-{i:03d}",
            "departments": [rng.randint(departments // 2, departments)],
            "chats": [101 + i],
        }
        if i % 4 == 0:
            rule["mode"] = "enforce"
        if i % 3 == 0:
            rule["hide_history"] = True
        rules.append(rule)
    return rules


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def runtime(h: Harness, stdin: io.StringIO | None = None) -> Runtime:
    return Runtime(
        h.services.settings,
        clock=h.clock,
        sleep=h.clock.sleep,
        transport=httpx.ASGITransport(app=h.portal.app),
        store=h.services.store,
        out=io.StringIO(),
        err=io.StringIO(),
        stdin=stdin or io.StringIO(),
    )


async def cli(h: Harness, *argv: str, stdin: io.StringIO | None = None) -> Run:
    """Run one `autojoin` command against the harness; returns its exit code and output."""
    args = build_parser().parse_args(list(argv))
    env = runtime(h, stdin)
    code: int = await args.run(args, env)
    assert isinstance(env.out, io.StringIO)
    assert isinstance(env.err, io.StringIO)
    return Run(code, env.out.getvalue(), env.err.getvalue())


def reconciler(h: Harness) -> Reconciler:
    """The scheduled pass exactly as `serve` builds it, on the harness's worker client."""
    worker = h.services.worker
    assert worker is not None
    return Reconciler(
        h.services.store,
        worker.ctx.client,
        lambda: h.services.rules.current,
        h.services.settings,
        clock=h.clock,
        sleep=h.clock.sleep,
        owner="test-process",
    )


def members(h: Harness, chat: int) -> set[int]:
    return h.portal.chat_members(chat)
