"""The scheduled pass: drift repair for synced rules only, incremental and full, one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.jobs import ADD_TO_CHAT, REMOVE_FROM_CHAT
from bot.lease import take_lease
from bot.reconcile.schedule import pass_due
from bot.reconcile.state import LEASE_KEY, REPORT_KEY, Cursor, load_cursor
from tests.harness import Harness, open_harness
from tests.reconcile.kit import cli, members, reconciler, write_rules
from tests.reconcile.test_semantics import ENGINEERING, RULES, SALES, synced

pytestmark = pytest.mark.anyio

LATER = "2026-03-01T10:00:00+00:00"
HOUR = 3600.0


async def queued(h: Harness, kind: str) -> list[tuple[int, int]]:
    jobs = await h.services.store.jobs(("pending",), limit=1000)
    return sorted((j.payload["chat_id"], j.payload["user_id"]) for j in jobs if j.kind == kind)


async def test_nothing_happens_before_the_first_sync(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        before = h.portal.http_requests
        report = await reconciler(h).tick()
        assert report is not None
        assert report.rules == 0
        assert report.skipped_rules == ["engineering", "sales"]
        assert h.portal.http_requests == before
        assert await queued(h, ADD_TO_CHAT) == []


async def test_incremental_pass_repairs_a_missed_hire_and_a_dismissal(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        assert (await load_cursor(h.services.store)).stamp is not None  # sync leaves the cursor
        h.portal.upsert_user(40, name="Nia", departments=[8], timestamp_x=LATER)  # no event came
        h.portal.upsert_user(9, active=False, timestamp_x=LATER)
        h.clock.advance(16 * 60)
        before = h.portal.http_requests
        report = await reconciler(h).tick()
        assert report is not None
        assert not report.full
        # the two changed people, and user 12 who holds the old cursor (one second of overlap)
        assert (report.people, report.adds, report.removes) == (3, 1, 1)
        assert h.portal.http_requests - before == report.requests == 2  # changes + tree, chats
        await h.drain()
        assert 40 in members(h, ENGINEERING)
        assert 9 not in members(h, ENGINEERING)
        assert (await load_cursor(h.services.store)).stamp == LATER
        assert await reconciler(h).tick() is None  # not due again yet


async def test_a_transfer_that_leaves_the_stamp_alone_waits_for_the_full_pass(
    tmp_path: Path,
) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        h.portal.upsert_user(8, departments=[9])  # TIMESTAMP_X unchanged
        h.clock.advance(16 * 60)
        report = await reconciler(h).tick()
        assert report is not None
        assert not report.full
        assert report.removes == 0
        h.clock.advance(24 * HOUR)
        report = await reconciler(h).tick()
        assert report is not None
        assert report.full
        assert report.removes == 1
        assert await queued(h, REMOVE_FROM_CHAT) == [(ENGINEERING, 8)]


async def test_an_edited_rule_waits_for_sync(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        write_rules(rules, [RULES[0], dict(RULES[1], departments=[1])])  # Sales → everyone
        assert h.services.rules.reload()
        h.portal.upsert_user(41, name="Kai", departments=[4], timestamp_x=LATER)
        h.portal.upsert_user(42, name="Eli", departments=[7], timestamp_x=LATER)
        h.clock.advance(24 * HOUR)
        report = await reconciler(h).tick()
        assert report is not None
        assert report.skipped_rules == ["sales"]
        assert await queued(h, ADD_TO_CHAT) == [(ENGINEERING, 42)]
        await h.drain()
        assert (await cli(h, "sync", "--yes")).code == 0
        assert {6, 7, 10, 41} <= members(h, SALES)


async def test_the_removal_guard_holds_a_mass_removal_and_says_so(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path, AUTOJOIN_MAX_REMOVALS="1") as h:
        await synced(h)
        for uid in (8, 9):
            h.portal.upsert_user(uid, active=False, timestamp_x=LATER)
        h.portal.upsert_user(43, name="Bo", departments=[7], timestamp_x=LATER)
        h.clock.advance(16 * 60)
        report = await reconciler(h).tick()
        assert report is not None
        assert report.held_removals == 2
        assert await queued(h, REMOVE_FROM_CHAT) == []
        assert await queued(h, ADD_TO_CHAT) == [(ENGINEERING, 43)]  # adds still happen
        health = (await h.client.get("/healthz")).json()
        assert health["status"] == "degraded"
        held = [r for r in health["reasons"] if r.get("code") == "REMOVALS_HELD"]
        assert "--allow-removals 2" in str(held[0]["message"])
        refused = await cli(h, "sync", "--yes")
        assert refused.code == 1
        assert "AUTOJOIN_MAX_REMOVALS=1" in refused.err
        assert (await cli(h, "sync", "--yes", "--allow-removals", "2")).code == 0
        assert not {8, 9} & members(h, ENGINEERING)
        h.clock.advance(16 * 60)
        await reconciler(h).tick()
        assert (await h.client.get("/healthz")).json()["status"] == "ok"


async def test_one_process_at_a_time_and_no_second_job_for_open_work(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        store = h.services.store
        h.portal.upsert_user(44, name="Ari", departments=[7], timestamp_x=LATER)
        h.clock.advance(16 * 60)
        assert await take_lease(store, LEASE_KEY, "other-process", h.clock(), 600)
        assert await reconciler(h).tick() is None  # the other process holds the lease
        h.clock.advance(601)
        first = await reconciler(h).tick()
        assert first is not None
        assert first.adds == 1
        assert await store.get_state(LEASE_KEY) is None  # released after the pass
        h.clock.advance(16 * 60)
        await reconciler(h).tick()  # the add is still queued: not queued twice
        assert await queued(h, ADD_TO_CHAT) == [(ENGINEERING, 44)]
        assert await store.get_state(REPORT_KEY) is not None


async def test_zero_minutes_turns_the_schedule_off(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path, AUTOJOIN_RECONCILE_MINUTES="0") as h:
        await synced(h)
        h.clock.advance(48 * HOUR)
        schedule = reconciler(h)
        assert await schedule.tick() is None
        await schedule.run_forever()  # returns at once instead of looping


NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("minutes", "hours", "cursor", "due"),
    [
        (15, 24, Cursor(), True),  # never ran: full
        (15, 24, Cursor("s", NOW - 60, NOW - HOUR), None),  # ran a minute ago
        (15, 24, Cursor("s", NOW - 901, NOW - HOUR), False),  # incremental
        (15, 24, Cursor("s", NOW - 60, NOW - 24 * HOUR), True),  # the daily full pass
        (15, 0, Cursor("s", NOW - 901, NOW - 900 * HOUR), False),  # no periodic full pass
        (15, 0, Cursor(), True),  # ...but one to start from
        (15, 24, Cursor(None, NOW - 901, NOW - HOUR), True),  # no stamp to go on: full
        (0, 24, Cursor(), None),  # off
    ],
)
def test_when_a_pass_is_due(minutes: int, hours: int, cursor: Cursor, due: bool | None) -> None:
    assert pass_due(cursor, NOW, interval=minutes * 60.0, full_every=hours * HOUR) is due
