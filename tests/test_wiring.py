from __future__ import annotations

import logging

import pytest

from bot.wiring import supervised
from tests.fakes import FakeClock

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
