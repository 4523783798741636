from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.executor import WorkContext
from bot.jobs import Job, NewJob
from bot.outcomes import Result, Retry
from bot.services import supervised
from tests.fakes import FakeClock
from tests.harness import open_harness

pytestmark = pytest.mark.anyio


async def test_a_crashing_background_task_is_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(clock())
        if len(runs) < 4:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="autojoin"):
        await supervised(flaky, sleep=clock.sleep)
    assert len(runs) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert caplog.text.count("failed; restarting") == 3


async def test_a_waiting_job_polls_at_a_fixed_interval_instead_of_backing_off(
    tmp_path: Path,
) -> None:
    """A reply waiting for its adds must not drift minutes behind them."""
    async with open_harness(tmp_path) as h:
        worker = h.services.worker
        assert worker is not None
        calls: list[float] = []

        async def waiting(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            calls.append(h.clock())
            return {job.id: Retry("WAITING", "not yet", poll=2.0) for job in jobs}

        worker.executors = {"test.wait": waiting}
        await h.services.store.enqueue([NewJob("test.wait", {})], h.clock())
        for _ in range(6):
            await worker.run_until_idle()
            [job] = await h.services.store.jobs(("pending",))
            assert job.run_after - h.clock() == pytest.approx(2.0)
            h.clock.advance(2.0)
        assert len(calls) == 6
