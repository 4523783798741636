"""Delivery under Bitrix24's limits: coalesced, batched, inside the portal's leaky bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, user_add
from tests.fakes import FakeClock
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio

CHATS = [101, 103, 104, 105, 102]


def write_rules(tmp_path: Path, chats: list[int]) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\ndefaults: {hide_history: false}\nrules:\n"
        f"  - name: everyone\n    departments: [5]\n    chats: {chats}\n"
    )


async def post_hires(h: Harness, first: int, count: int) -> None:
    for user_id in range(first, first + count):
        user = h.portal.upsert_user(user_id, name=f"U{user_id}", departments=[5])
        response = await h.post(user_add(user, token=APP_TOKEN))
        assert response.status_code == 200


@pytest.mark.parametrize(("hires", "chats"), [(300, 2), (1000, 5)])
async def test_a_burst_of_hires_costs_a_few_requests_and_stays_under_the_limit(
    tmp_path: Path, hires: int, chats: int
) -> None:
    clock = FakeClock()
    portal = FakePortal(clock=clock, rate=2.0, burst=50)
    write_rules(tmp_path, CHATS[:chats])
    async with open_harness(tmp_path, portal=portal, clock=clock) as h:
        await post_hires(h, 1000, hires)
        await h.drain()
        for chat in CHATS[:chats]:
            members = h.portal.chat_members(chat)
            assert set(range(1000, 1000 + hires)) <= members
        naive = hires * chats
        assert h.portal.counters.rejected_rate_limit == 0
        assert h.portal.http_requests <= naive * 0.1
        added = [e for e in await h.services.store.history(limit=10_000) if e.outcome == "added"]
        assert len(added) == naive


async def test_interleaved_arrivals_are_coalesced_per_chat(tmp_path: Path) -> None:
    """Hires that arrive while the worker is busy merge into the next add, not one call each."""
    clock = FakeClock()
    write_rules(tmp_path, [101, 103])
    async with open_harness(tmp_path, clock=clock) as h:
        worker = h.services.worker
        assert worker is not None
        for round_start in range(2000, 2300, 50):
            await post_hires(h, round_start, 50)
            await worker.step()
            clock.advance(0.5)
        await h.drain()
        adds = h.portal.calls_to("im.chat.user.add")
        assert len(adds) <= 2 * 7  # one per chat per worker round, at most
        assert sum(len(call.params["USERS"]) for call in adds) == 600


async def test_query_limit_exceeded_from_another_client_is_survived(tmp_path: Path) -> None:
    clock = FakeClock()
    write_rules(tmp_path, [101, 103])
    async with open_harness(tmp_path, clock=clock) as h:
        await post_hires(h, 3000, 20)
        h.portal.fail_next("batch", "QUERY_LIMIT_EXCEEDED", times=3)
        await h.drain()
        assert set(range(3000, 3020)) <= h.portal.chat_members(101)
        assert set(range(3000, 3020)) <= h.portal.chat_members(103)
