"""The leaky bucket (§7.1) and the per-method operating limit (§7.2), on an injected clock."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.limits import LeakyBucket, OperatingLimit
from tests.fakes import FakeClock
from tests.sandbox.conftest import client_for

pytestmark = pytest.mark.anyio


async def statuses(rest: httpx.AsyncClient, n: int) -> list[int]:
    return [(await rest.post("user.get", json={"ID": 1})).status_code for _ in range(n)]


async def test_fifty_pass_the_fifty_first_is_503_then_two_per_second(
    rest: httpx.AsyncClient, portal: FakePortal, clock: FakeClock
) -> None:
    assert await statuses(rest, 50) == [200] * 50
    refused = await rest.post("user.get", json={})
    assert refused.status_code == 503
    assert refused.json()["error"] == "QUERY_LIMIT_EXCEEDED"
    clock.advance(1.0)
    assert await statuses(rest, 3) == [200, 200, 503]
    assert portal.counters.rejected_rate_limit == 2
    assert portal.counters.http_requests == 54
    assert portal.counters.max_bucket_level == 50


async def test_refused_requests_do_not_fill_the_bucket(
    rest: httpx.AsyncClient, clock: FakeClock
) -> None:
    await statuses(rest, 50)
    assert await statuses(rest, 20) == [503] * 20
    clock.advance(0.5)  # drains one unit
    assert await statuses(rest, 2) == [200, 503]


async def test_enterprise_bucket_and_time_scale(clock: FakeClock) -> None:
    portal = FakePortal(clock=clock, burst=250, rate=5.0, time_scale=10.0)
    async with client_for(portal) as rest:
        assert await statuses(rest, 251) == [200] * 250 + [503]
        clock.advance(0.1)  # 5/s x 10 x 0.1 s = 5 units
        assert await statuses(rest, 6) == [200] * 5 + [503]


def test_bucket_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="burst"):
        LeakyBucket(burst=0)


async def test_operating_limit_blocks_the_method_until_reset(
    rest: httpx.AsyncClient, portal: FakePortal, clock: FakeClock
) -> None:
    portal.set_operating_cost("user.get", 100.0)
    times = [(await rest.post("user.get", json={"ID": 1})).json()["time"] for _ in range(5)]
    assert [t["operating"] for t in times] == [100, 200, 300, 400, 500]
    reset_at = times[-1]["operating_reset_at"]
    assert reset_at > clock()
    blocked = await rest.post("user.get", json={"ID": 1})
    assert (blocked.status_code, blocked.json()["error"]) == (429, "OPERATION_TIME_LIMIT")
    other = await rest.post("department.get", json={})
    assert other.status_code == 200  # other methods are unaffected
    assert other.json()["time"]["operating"] == 0
    clock.advance(reset_at - clock())
    again = await rest.post("user.get", json={"ID": 1})
    assert again.status_code == 200
    assert again.json()["time"]["operating"] == 100


async def test_operating_limit_counts_batch_sub_commands(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.set_operating_cost("im.chat.user.list", 200.0)
    cmd = {f"c{i}": "im.chat.user.list?CHAT_ID=101" for i in range(4)}
    response = await rest.post("batch", json={"cmd": cmd})
    result = response.json()["result"]
    assert list(result["result"]) == ["c0", "c1", "c2"]
    assert result["result_error"]["c3"]["error"] == "OPERATION_TIME_LIMIT"
    assert response.json()["time"]["operating"] == 0  # the batch wrapper itself costs nothing


def test_operating_window_slides_by_one_minute_baskets() -> None:
    limit = OperatingLimit(limit=100.0, time_scale=2.0)  # 30 s baskets, 300 s window
    limit.set_cost("m", 60.0)
    limit.charge("m", 0.0)
    limit.charge("m", 31.0)
    assert limit.operating("m", 31.0) == 120
    assert limit.blocked("m", 31.0)
    assert limit.reset_at("m", 31.0) == 300.0
    assert limit.operating("m", 300.0) == 60
    assert not limit.blocked("m", 300.0)
    assert limit.operating("m", 330.0) == 0
