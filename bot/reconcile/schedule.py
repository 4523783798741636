"""The scheduled reconcile inside `serve`: repair drift for rules that were already synced.

Bitrix24 sends `ONUSERADD` once, at first login, and nothing for transfers or dismissals, and
never re-delivers a missed event (reference §1.2, §2.2). So every AUTOJOIN_RECONCILE_MINUTES
(default 15; 0 turns the schedule off) one process runs a pass:

- incremental: `user.get` with `>TIMESTAMP_X` since the newest stamp seen (one second of
  overlap), active or not — missed hires, dismissals, edits that touch the user record;
- full, every AUTOJOIN_FULL_RECONCILE_HOURS (default 24; 0: never again after the first full
  read, and a `sync` counts as one): every active user, because whether a department change
  moves `TIMESTAMP_X` is unconfirmed (reference §2.2); a full pass also catches transfers.

A pass acts only on rules whose definition is the one `sync` last applied (`state.in_sync`);
a new or edited rule waits for a reviewed `sync`. Removals over AUTOJOIN_MAX_REMOVALS are not
made: they are logged and reported on `/healthz` until someone runs `sync --allow-removals`.
Processes coordinate through a lease in the store; if two ever ran the same slot anyway, the
slot-scoped dedupe keys would make the second one's jobs duplicates.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from bot.errors import PortalError, PortalWideError
from bot.lease import drop_lease, take_lease
from bot.reconcile.apply import apply_plan, open_pairs
from bot.reconcile.engine import changed_plan, full_plan
from bot.reconcile.ledger import load_ledger
from bot.reconcile.model import ReadError
from bot.reconcile.reader import Reader
from bot.reconcile.state import (
    LEASE_KEY,
    Cursor,
    PassReport,
    health_reasons,
    in_sync,
    load_cursor,
    save_cursor,
    save_report,
    synced_digests,
)
from bot.reload import RulesHolder
from bot.rest import PortalClient
from bot.rest.bucket import Sleep
from bot.rules import RuleSet
from bot.settings import Settings
from bot.store.aio import AsyncStore
from bot.worker import Worker

log = logging.getLogger("autojoin.reconcile")

CHECK_EVERY = 60.0  # how often a process looks whether a pass is due
LEASE_SECONDS = 600.0  # a pass that takes longer may be started by another process


def pass_due(cursor: Cursor, now: float, *, interval: float, full_every: float) -> bool | None:
    """None if no pass is due, else whether the due pass is a full one (seconds throughout)."""
    if interval <= 0:
        return None
    if cursor.full_at is None or (full_every > 0 and now - cursor.full_at >= full_every):
        return True
    if cursor.pass_at is not None and now - cursor.pass_at < interval:
        return None
    return cursor.stamp is None  # without a stamp there is nothing to be incremental from


class Reconciler:
    def __init__(
        self,
        store: AsyncStore,
        client: PortalClient,
        rules: Callable[[], RuleSet],
        settings: Settings,
        *,
        clock: Callable[[], float],
        sleep: Sleep,
        wake: Callable[[], None] | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.rules = rules
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.wake = wake
        self.owner = owner or f"reconcile-{uuid.uuid4().hex[:10]}"
        self.interval = settings.reconcile_minutes * 60.0
        self.full_every = settings.full_reconcile_hours * 3600.0

    def due(self, cursor: Cursor, now: float) -> bool | None:
        return pass_due(cursor, now, interval=self.interval, full_every=self.full_every)

    async def run_forever(self) -> None:
        if self.interval <= 0:
            log.info("scheduled reconcile is off (AUTOJOIN_RECONCILE_MINUTES=0)")
            return
        while True:
            try:
                await self.tick()
            except Exception:  # a background task must not take `serve` down with it
                log.exception("scheduled reconcile failed; trying again later")
            await self.sleep(min(CHECK_EVERY, self.interval))

    async def tick(self) -> PassReport | None:
        """Run a pass if one is due and this process gets the lease."""
        if self.due(await load_cursor(self.store), self.clock()) is None:
            return None
        if not await take_lease(self.store, LEASE_KEY, self.owner, self.clock(), LEASE_SECONDS):
            return None
        try:
            full = self.due(await load_cursor(self.store), self.clock())  # another may have run
            return None if full is None else await self.run_pass(full=full)
        finally:
            await drop_lease(self.store, LEASE_KEY, self.owner, self.clock())

    async def run_pass(self, *, full: bool) -> PassReport:
        now = self.clock()
        ruleset = self.rules()
        active = [r for r in ruleset.rules if r.enabled and r.kind == "departments"]
        scope = in_sync(active, await synced_digests(self.store))
        cursor = await load_cursor(self.store)
        full = full or cursor.stamp is None
        report = PassReport(
            now, full, len(scope), sorted(r.name for r in active if r.name not in scope)
        )
        stamp = cursor.stamp
        try:
            if scope:
                stamp = await self._act(ruleset, scope, cursor, report)
        except (PortalError, ReadError) as exc:
            if isinstance(exc, PortalWideError):
                log.error("scheduled reconcile: the portal refused: %s", exc)
            report.error = str(exc)
            log.warning("scheduled reconcile pass failed: %s", exc)
            await save_report(self.store, report)
            return report
        after = self.clock()
        await save_cursor(
            self.store, Cursor(stamp, after, after if full else cursor.full_at), after
        )
        await save_report(self.store, report)
        log.info(
            "reconcile (%s): %d rules, %d people read, %d adds, %d removals queued, "
            "%d removals held, %d requests",
            "full" if full else "incremental",
            report.rules,
            report.people,
            report.adds,
            report.removes,
            report.held_removals,
            report.requests,
        )
        return report

    async def _act(
        self, ruleset: RuleSet, scope: set[str], cursor: Cursor, report: PassReport
    ) -> str | None:
        now = self.clock()
        names = [rule.name for rule in ruleset.rules]
        ledger = await load_ledger(self.store, names, now, write=True)
        reader = Reader(self.client)
        webhook_user = self.client.webhook.user_id
        if report.full or cursor.stamp is None:
            plan, snapshot, _ = await full_plan(
                reader, ruleset, ledger, webhook_user=webhook_user, scope=scope
            )
        else:
            plan, snapshot, _ = await changed_plan(
                reader, ruleset, ledger, cursor.stamp, webhook_user=webhook_user, scope=scope
            )
        limit = self.settings.max_removals
        if plan.remove_count > limit:
            report.held_removals = plan.remove_count
            log.error(
                "reconcile: %d removals exceed AUTOJOIN_MAX_REMOVALS=%d; none made. Review with "
                "`autojoin plan`, then `autojoin sync --allow-removals %d`",
                plan.remove_count,
                limit,
                plan.remove_count,
            )
            plan = plan.without_removals()
        for chat, code in sorted(plan.unreadable.items()):
            log.warning("reconcile: chat %s skipped: member list unreadable (%s)", chat, code)
        slot = int(now // self.interval) if self.interval > 0 else int(now)
        queued = await apply_plan(
            self.store, plan, f"reconcile:{slot}", now, await open_pairs(self.store)
        )
        if queued and self.wake is not None:
            self.wake()
        report.people, report.requests = len(snapshot.people), reader.requests
        report.adds, report.removes = plan.add_count, plan.remove_count
        report.unreadable = {str(c): code for c, code in plan.unreadable.items()}
        return snapshot.newest_stamp or cursor.stamp


def reconcile_schedule(
    store: AsyncStore,
    worker: Worker,
    rules: RulesHolder,
    settings: Settings,
    *,
    clock: Callable[[], float],
    sleep: Sleep = anyio.sleep,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The background task `serve` starts next to its worker; it returns at once when off.

    `sleep` only spaces the checks (real time by default, like the retention loop), so a
    test clock whose sleep jumps ahead cannot make the loop spin.
    """
    reconciler = Reconciler(
        store,
        worker.ctx.client,
        lambda: rules.current,
        settings,
        clock=clock,
        sleep=sleep,
        wake=worker.wake,
    )
    return reconciler.run_forever


async def reconcile_health(store: AsyncStore, max_removals: int) -> list[dict[str, object]]:
    """`/healthz` reasons from the last scheduled pass (held removals, unreadable chats)."""
    return await health_reasons(store, max_removals)
