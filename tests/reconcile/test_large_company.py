"""10,000 people, 500 departments, 200 rules: the fewest requests, and sync converges."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.reconcile.engine import rule_chats
from bot.reconcile.reader import pages_for, request_count
from bot.rules import load_rules
from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company
from tests.fakes import FakeClock
from tests.harness import open_harness
from tests.reconcile.kit import cli, generated_rules, reconciler, write_rules

pytestmark = pytest.mark.anyio

USERS, DEPARTMENTS, RULES = 10_000, 500, 200
LATER = "2026-03-01T10:00:00+00:00"


async def test_plan_reads_in_the_fewest_requests_and_sync_leaves_nothing_to_do(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    portal = FakePortal(generated_company(USERS, DEPARTMENTS, RULES, seed=3), clock=clock)
    for chat in portal.state.chats.values():
        chat.managers.add(1)  # `enforce` needs the webhook user to be allowed to remove
    rules = write_rules(tmp_path / "rules.yaml", generated_rules(RULES, DEPARTMENTS))
    active = sum(1 for u in portal.state.users.values() if u.active)
    chats = len(rule_chats(load_rules(rules)))
    async with open_harness(tmp_path, portal=portal, clock=clock) as h:
        before = portal.http_requests
        first = await cli(h, "plan", "--format", "json", "--detailed-exitcode")
        used = portal.http_requests - before

        # 1 + ceil((P_u - 1 + P_d - 1 + max(0, C - 48)) / 50) with P = ceil(rows / 50)
        pages = [pages_for(active), pages_for(DEPARTMENTS)]
        expected = 1 + math.ceil((sum(pages) - 2 + max(0, chats - 48)) / 50)
        assert (active, chats, expected) == (9_513, 200, 9)
        assert first.code == 2
        body = first.json()
        # the titles of the chats shown: read after the plan, 50 cards to a request
        assert body["title_requests"] == math.ceil(chats / 50)
        assert used - body["title_requests"] == request_count(pages, chats) == expected
        assert body["requests"] == expected
        assert body["people"] == active
        assert body["totals"]["chats"] == chats
        assert body["totals"]["add"] > 1000
        assert body["totals"]["remove"] == 0
        assert body["errors"] == []
        assert h.portal.calls_to("im.chat.user.add") == []  # plan changes nothing

        synced = await cli(h, "sync", "--yes")
        assert synced.code == 0, synced.err
        assert "added" in synced.out

        second = await cli(h, "plan", "--format", "json", "--detailed-exitcode")
        assert second.code == 0, second.out
        assert second.json()["totals"]["add"] == 0
        assert second.json()["totals"]["remove"] == 0

        # a transfer out of every rule and a dismissal, both under `enforce`, repaired by the
        # scheduled incremental pass, which reads only the people who changed
        enforced = sorted(
            (chat, user)
            for rule, chat, user, _ in await h.services.store.ledger()
            if chat > 0 and int(rule.removeprefix("rule-")) % 4 == 0
        )
        moved, dismissed = enforced[0][1], enforced[-1][1]
        affected = [(chat, user) for chat, user in enforced if user in (moved, dismissed)]
        portal.upsert_user(moved, departments=[1], timestamp_x=LATER)  # the root: no rule
        portal.upsert_user(dismissed, active=False, timestamp_x=LATER)
        clock.advance(16 * 60)
        before = portal.http_requests
        report = await reconciler(h).tick()
        assert report is not None
        assert not report.full
        assert (report.removes, report.adds) == (len(affected), 0)
        # changed people + tree page 1, the other 9 tree pages, the member lists they touch
        assert portal.http_requests - before == report.requests == 3
        await h.drain()
        assert all(user not in portal.chat_members(chat) for chat, user in affected)
