"""Benchmark 4: a plan at company scale — 10,000 users, 500 departments, 200 rules.

Seconds, portal requests and peak RSS of one plan against a fake portal that runs at the
real cloud rate (2/s, burst 50), so the seconds are what an operator would wait. If
`bot/commands/plan.py` exists, `autojoin plan` itself is measured; otherwise (or if it
fails) the same work built from existing pieces (`bench/planwork.py`). Either runs as a
child process: its peak RSS comes from `wait4` for that child alone.
"""

from __future__ import annotations

import json
import math
import resource
from dataclasses import dataclass
from typing import Any

from bench.config import Config
from bench.procs import REPO, ChildResult, child_env, python, run_child
from bench.stats import Section, row
from bench.workload import served, settings_env, spread_rules, write_rules
from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company

NAME = "plan"
TITLE = "Plan at company scale"
TIME_LIMIT = 300.0


@dataclass(frozen=True, slots=True)
class Scale:
    users: int
    departments: int
    rules: int
    chats: int


FULL = Scale(10_000, 500, 200, 100)
QUICK = Scale(2_000, 100, 40, 20)


@dataclass(frozen=True, slots=True)
class Measured:
    child: ChildResult
    requests: int
    rejected: int
    portal_cpu: float  # CPU the benchmark process spent meanwhile: the fake portal, mostly
    report: dict[str, Any]  # planwork's JSON line (empty for `autojoin plan`)


def _report(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            parsed = json.loads(line)
            return parsed if isinstance(parsed, dict) else {}
    return {}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_kib(measured: Measured) -> int:
    """The child's own VmHWM at its end if it reported one, else the last polled value."""
    return int(measured.report.get("vmhwm_kib") or measured.child.peak_kib)


def run(config: Config) -> Section:
    section = Section(NAME, TITLE)
    scale = QUICK if config.quick else FULL
    work = config.workdir
    rules = write_rules(
        work / "rules.yaml", spread_rules(scale.rules, scale.departments, scale.chats, seed=5)
    )
    state = generated_company(scale.users, scale.departments, scale.chats, seed=5)
    portal = FakePortal(state)
    use_cli = (REPO / "bot" / "commands" / "plan.py").exists()
    measured: list[Measured] = []
    with served(portal) as webhook:
        env = child_env(
            settings_env(webhook=webhook, rules=rules, database=f"sqlite:///{work / 'plan.db'}")
        )
        for _ in config.repetitions(section.notes):
            portal.reset_limits()  # each plan starts against an idle portal
            portal.reset_counters()
            argv = python("-m", "bot", "plan") if use_cli else python("-m", "bench.planwork")
            cpu = _cpu()
            child = run_child(argv, env=env, cwd=work, log=work / "plan.log", timeout=TIME_LIMIT)
            if child.returncode != 0 and use_cli:
                section.notes.append(
                    f"`autojoin plan` exited {child.returncode}; measured bench/planwork.py "
                    f"instead. Its output ended: {child.output.strip()[-300:]!r}"
                )
                use_cli = False
                portal.reset_limits()
                portal.reset_counters()
                cpu = _cpu()
                child = run_child(
                    python("-m", "bench.planwork"),
                    env=env,
                    cwd=work,
                    log=work / "plan.log",
                    timeout=TIME_LIMIT,
                )
            if child.returncode != 0:
                raise RuntimeError(f"plan exited {child.returncode}: {child.output[-2000:]}")
            counters = portal.counters
            measured.append(
                Measured(
                    child,
                    counters.http_requests,
                    counters.rejected_rate_limit,
                    _cpu() - cpu,
                    _report(child.output),
                )
            )
    case = f"{scale.users:,} users, {scale.departments} depts, {scale.rules} rules"
    section.rows += [
        row(case, "wall time", [m.child.seconds for m in measured], "s"),
        row(case, "CPU: plan process", [m.child.cpu_seconds for m in measured], "s"),
        row(case, "CPU: fake portal", [m.portal_cpu for m in measured], "s", "bench process"),
        row(case, "portal requests", [m.requests for m in measured]),
        row(case, "rejected (rate limit)", [m.rejected for m in measured]),
        row(case, "peak RSS (VmHWM)", [_peak_kib(m) / 1024 for m in measured], "MiB"),
    ]
    reports = [m.report for m in measured if m.report]
    if reports:
        for key, metric, unit in (
            ("bucket_wait", "of which bucket waits", "s"),
            ("fetch_seconds", "fetch (users, tree, members)", "s"),
            ("evaluate_seconds", "evaluate rules, all users", "s"),
            ("planned_adds", "adds planned", ""),
        ):
            section.rows.append(row(case, metric, [float(r[key]) for r in reports], unit))
        first = reports[0]
        section.notes.append(
            f"{first['users']:,} users fetched, {first['evaluated']:,} active with departments "
            f"evaluated against {first['rules']} rules over {first['departments']} departments "
            f"and {first['chats']} target chats: {first['grants']:,} grants."
        )
    pages = math.ceil(scale.users / 50)
    if use_cli:
        header = next(
            (line for line in measured[-1].child.output.splitlines() if line.startswith("Plan ")),
            "",
        )
        section.notes.append(
            "Measured: `autojoin plan` (default text output, to a file). It said: "
            f"`{header.split(': ', 1)[-1]}`."
        )
    else:
        section.notes.append(
            "Measured: bench/planwork.py (`autojoin plan` was not there or failed): user.get "
            f"page 1, then the other {pages - 1} pages 50 per batch; department.get through "
            "DepartmentDirectory (call_list, one request per 50 departments); "
            "im.chat.user.list for every target chat, 50 per batch; then rules for every "
            "active user."
        )
    section.notes += [
        "The fake portal runs at the real rate (2/s, burst 50), reset before each run. A "
        "fresh process's bucket starts full (it cannot know what others just sent), so each "
        "request waits ~0.5 s.",
        "Wall time ≈ the bucket waits + the plan's own CPU + the fake portal's CPU (in the "
        "benchmark process; its user.get builds the whole user list again for every page of "
        "50, a cost of the fake, not of autojoin or of Bitrix24).",
        "Wall time includes interpreter start-up and imports. Peak RSS is the child's VmHWM "
        "(its own report at the end, or polled every 5 ms for `autojoin plan`).",
    ]
    return section
