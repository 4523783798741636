"""Reconcile bookkeeping in the store's key/value state, shared by every process.

- `reconcile.synced`: rule name → digest of its definition when `sync` last applied it. The
  schedule acts only on rules whose current digest matches, so a new or edited rule reaches
  existing employees through a reviewed `sync`, never silently.
- `reconcile.cursor`: the newest `TIMESTAMP_X` seen and when the last (full) pass ran.
- `reconcile.lease`: which process runs a pass now (atomic `update_state`, with an expiry).
- `reconcile.report`: what the last scheduled pass did; `/healthz` reads its problems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.rules import Rule
from bot.store.aio import AsyncStore

SYNCED_KEY = "reconcile.synced"
CURSOR_KEY = "reconcile.cursor"
LEASE_KEY = "reconcile.lease"
REPORT_KEY = "reconcile.report"


def rule_digest(rule: Rule) -> str:
    """sha256 of what decides membership; wording (description, reply) is not part of it."""
    fields = {
        "kind": rule.kind,
        "departments": list(rule.departments),
        "chats": list(rule.chats),
        "hide_history": rule.hide_history,
        "include_subdepartments": rule.include_subdepartments,
        "mode": rule.mode,
        "enabled": rule.enabled,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _load(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def synced_digests(store: AsyncStore) -> dict[str, str]:
    return {str(k): str(v) for k, v in _load(await store.get_state(SYNCED_KEY)).items()}


async def record_synced(store: AsyncStore, rules: Iterable[Rule], now: float) -> None:
    """The rules one `sync` applied, replacing the previous record (deleted rules drop out)."""
    value = {rule.name: rule_digest(rule) for rule in rules}
    await store.set_state(SYNCED_KEY, json.dumps(value, sort_keys=True), now)


def in_sync(rules: Iterable[Rule], digests: dict[str, str]) -> set[str]:
    """Names of the rules whose definition is the one last synced."""
    return {r.name for r in rules if digests.get(r.name) == rule_digest(r)}


@dataclass(slots=True)
class Cursor:
    stamp: str | None = None  # newest TIMESTAMP_X seen by a full or incremental pass
    pass_at: float | None = None
    full_at: float | None = None


async def load_cursor(store: AsyncStore) -> Cursor:
    raw = _load(await store.get_state(CURSOR_KEY))
    stamp, pass_at, full_at = raw.get("stamp"), raw.get("pass_at"), raw.get("full_at")
    return Cursor(
        stamp if isinstance(stamp, str) else None,
        float(pass_at) if isinstance(pass_at, int | float) else None,
        float(full_at) if isinstance(full_at, int | float) else None,
    )


async def save_cursor(store: AsyncStore, cursor: Cursor, now: float) -> None:
    await store.set_state(CURSOR_KEY, json.dumps(asdict(cursor)), now)


@dataclass(slots=True)
class PassReport:
    """One scheduled pass, as logged and kept for `/healthz`."""

    at: float
    full: bool
    rules: int = 0  # rules in sync, i.e. acted on
    skipped_rules: list[str] = field(default_factory=list)  # edited or new since the last sync
    people: int = 0
    requests: int = 0
    adds: int = 0
    removes: int = 0
    held_removals: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)
    error: str | None = None


async def save_report(store: AsyncStore, report: PassReport) -> None:
    await store.set_state(REPORT_KEY, json.dumps(asdict(report)), report.at)


async def health_reasons(store: AsyncStore, max_removals: int) -> list[dict[str, object]]:
    """Problems of the last scheduled pass, in `/healthz` reason form."""
    raw = _load(await store.get_state(REPORT_KEY))
    reasons: list[dict[str, object]] = []
    held = int(raw.get("held_removals") or 0)
    if held:
        reasons.append(
            {
                "check": "reconcile",
                "code": "REMOVALS_HELD",
                "message": f"{held} removals exceed AUTOJOIN_MAX_REMOVALS={max_removals} and were "
                f"not made; review with `autojoin plan`, then `autojoin sync --allow-removals "
                f"{held}`",
            }
        )
    unreadable = raw.get("unreadable") or {}
    if isinstance(unreadable, dict) and unreadable:
        listed = ", ".join(f"{chat} ({code})" for chat, code in sorted(unreadable.items()))
        reasons.append(
            {
                "check": "reconcile",
                "code": "MEMBER_LIST_UNREADABLE",
                "message": f"member lists could not be read: {listed}; the webhook user must be "
                "a member of every target chat",
            }
        )
    if raw.get("error"):
        reasons.append({"check": "reconcile", "code": "PASS_FAILED", "message": str(raw["error"])})
    return reasons
