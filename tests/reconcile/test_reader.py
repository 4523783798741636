"""The batched reader: exactly the requests the formula says, and no trust in a moving list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.reconcile.engine import full_plan, read_full
from bot.reconcile.ledger import Ledger
from bot.reconcile.model import ReadError
from bot.reconcile.reader import Reader, pages_for, request_count
from bot.reconcile.session import open_client
from bot.rules import load_rules
from bot.sandbox import Chat, FakePortal
from bot.sandbox.company import generated_company
from tests.fakes import FakeClock
from tests.harness import open_harness
from tests.reconcile.kit import runtime, write_rules

pytestmark = pytest.mark.anyio


class Hooked(httpx.AsyncBaseTransport):
    """Runs `before(n)` ahead of the n-th request (0-based): the portal changes mid-read."""

    def __init__(self, inner: httpx.AsyncBaseTransport, before: Callable[[int], None]) -> None:
        self.inner = inner
        self.before = before
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.before(self.sent)
        self.sent += 1
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(
    ("pages", "calls", "expected"),
    [
        ([1, 1], 0, 1),
        ([1, 1], 48, 1),
        ([1, 1], 49, 2),
        ([2, 1], 48, 2),
        ([191, 10], 200, 9),
        ([51], 0, 2),
        ([52], 0, 3),
        ([], 120, 3),
    ],
)
def test_the_request_formula(pages: list[int], calls: int, expected: int) -> None:
    assert request_count(pages, calls) == expected


@pytest.mark.parametrize(("users", "chats"), [(40, 0), (60, 47), (120, 49), (2600, 130)])
async def test_a_full_read_makes_exactly_the_formulas_requests(
    tmp_path: Path, users: int, chats: int
) -> None:
    clock = FakeClock()
    portal = FakePortal(generated_company(users, 60, chats, seed=5), clock=clock)
    async with open_harness(tmp_path, portal=portal, clock=clock) as h:
        active = sum(1 for u in portal.state.users.values() if u.active)
        targets = [101 + n for n in range(chats)]
        async with open_client(runtime(h)) as client:
            before = portal.http_requests
            reader = Reader(client)
            snapshot = await read_full(reader, targets, webhook_user=1)
        expected = request_count([pages_for(active), pages_for(60)], chats)
        assert portal.http_requests - before == reader.requests == expected
        assert len(snapshot.people) == active
        assert len(snapshot.tree) == 60
        assert sorted(snapshot.members) == targets
        assert snapshot.unreadable == {}


async def test_a_list_that_changes_between_requests_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    portal = FakePortal(generated_company(300, 10, 0, seed=5), clock=clock)
    async with open_harness(tmp_path, portal=portal, clock=clock) as h:
        env = runtime(h)

        def hire(n: int) -> None:
            if n == 1:
                portal.upsert_user(5000, name="Late", departments=[2])

        assert env.transport is not None
        env.transport = Hooked(env.transport, hire)
        async with open_client(env) as client:
            with pytest.raises(ReadError, match="the list changed while it was read"):
                await read_full(Reader(client), [], webhook_user=1)


async def test_someone_who_slips_between_pages_is_never_removed(tmp_path: Path) -> None:
    """A user missing from the paged list is looked up by ID before a removal is planned."""
    clock = FakeClock()
    state = generated_company(120, 5, 0, seed=5)
    for uid, user in state.users.items():
        user.active = True
        user.departments = [2] if uid == 70 else [1]
    state.add_chat(Chat(200, "Kept", owner=1, members={1, 70}))
    portal = FakePortal(state, clock=clock)
    rules = write_rules(
        tmp_path / "rules.yaml",
        [{"name": "kept", "departments": [2], "chats": [200], "mode": "enforce"}],
    )
    async with open_harness(tmp_path, portal=portal, clock=clock) as h:
        env = runtime(h)

        def shuffle(n: int) -> None:  # while pages 2-3 are read, 70 is out and 119 is in
            portal.upsert_user(70, active=n != 1)
            portal.upsert_user(119, active=n == 1)

        portal.upsert_user(119, active=False)
        assert env.transport is not None
        env.transport = Hooked(env.transport, shuffle)
        ledger = Ledger.from_rows([("kept", 200, 70)])
        async with open_client(env) as client:
            reader = Reader(client)
            plan, snapshot, _ = await full_plan(reader, load_rules(rules), ledger, webhook_user=1)
        assert 70 in snapshot.people  # put back by the lookup
        assert plan.remove_count == 0
        assert reader.requests == 3  # first batch, the other pages, the lookup by ID
