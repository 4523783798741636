"""The worker waits `AUTOJOIN_COALESCE_MS` for more adds to merge after events arrive, also
when they arrived while it was busy, unless it is working off a full batch (a backlog)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, user_add
from bot.worker import COALESCED, Worker, WorkerConfig
from tests.fakes import FakeClock
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio

WINDOW = 0.25
CHAT = 101


class FakeWatchingClock(FakeClock):
    """Records, for every sleep, how many users the portal had been asked to add by then."""

    def __init__(self) -> None:
        super().__init__()
        self.portal: FakePortal | None = None
        self.adds_at_sleep: list[tuple[float, int]] = []

    async def sleep(self, seconds: float) -> None:
        calls = self.portal.calls_to("im.chat.user.add") if self.portal else []
        self.adds_at_sleep.append((seconds, sum(len(c.params["USERS"]) for c in calls)))
        await super().sleep(seconds)


async def deliver(tmp_path: Path, hires: int, limit: int = 20_000) -> list[int]:
    """Post `hires` events, run the worker's loop until all landed; the add counts at each
    coalescing wait."""
    (tmp_path / "rules.yaml").write_text(
        "version: 1\ndefaults: {hide_history: false}\nrules:\n"
        f"  - name: everyone\n    departments: [5]\n    chats: [{CHAT}]\n"
    )
    clock = FakeWatchingClock()
    portal = FakePortal(clock=clock, rate=2.0, burst=50)
    clock.portal = portal
    users = set(range(4000, 4000 + hires))
    config = WorkerConfig(coalesce_window=WINDOW, coalesce_limit=limit)
    async with open_harness(tmp_path, portal=portal, clock=clock, config=config) as h:
        await post(h, users)
        served = h.services.worker
        assert served is not None
        # The adds' lane alone: the bot's lane would take coalescing waits of its own.
        adds = {kind: run for kind, run in served.executors.items() if kind in COALESCED}
        worker = Worker(
            h.services.back_store, adds, served.ctx, clock=clock, sleep=clock.sleep, config=config
        )
        worker.wake()  # what the POSTs did for the served worker
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run_forever)
            with anyio.fail_after(20):
                # Until everyone landed and the loop took a coalescing wait after that work
                # (stopping at the first sight of the last member would race the loop).
                while not (users <= portal.chat_members(CHAT) and waited(clock)):  # noqa: ASYNC110 (another thread's state)
                    await anyio.sleep(0.01)
            worker.request_stop()
    return [added for seconds, added in clock.adds_at_sleep if seconds == WINDOW]


def waited(clock: FakeWatchingClock) -> bool:
    return any(seconds == WINDOW for seconds, _ in clock.adds_at_sleep)


async def post(h: Harness, users: set[int]) -> None:
    for user_id in sorted(users):
        user = h.portal.upsert_user(user_id, name=f"U{user_id}", departments=[5])
        assert (await h.post(user_add(user, token=APP_TOKEN))).status_code == 200


async def test_events_that_arrive_before_a_step_wait_for_more_before_their_adds(
    tmp_path: Path,
) -> None:
    waits = await deliver(tmp_path, 5)
    assert waits[0] == 0  # the window came after the resolve step, before any add


async def test_a_full_batch_is_worked_off_without_waiting(tmp_path: Path) -> None:
    waits = await deliver(tmp_path, 60, limit=50)
    # 50 resolves (full) → 10 resolves + 40 adds (full) → 20 adds → only then the window.
    assert waits[0] == 60
