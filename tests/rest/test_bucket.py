from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.rest import BucketLevel, BucketState, LeakyBucket, MemoryBucketState, OperatingGuard
from tests.fakes import FakeClock


def bucket(clock: FakeClock, state: BucketState | None = None) -> LeakyBucket:
    return LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep, state=state)


@pytest.mark.anyio
async def test_a_fresh_bucket_is_full_so_the_first_request_waits_one_drain_step() -> None:
    clock = FakeClock()
    waited = await bucket(clock).acquire()
    assert waited == pytest.approx(0.5)
    assert clock.sleeps == [pytest.approx(0.5)]


@pytest.mark.anyio
async def test_after_draining_the_burst_passes_without_waiting() -> None:
    clock = FakeClock()
    b = bucket(clock)
    clock.advance(25)
    for _ in range(48):
        assert await b.acquire() == 0
    assert clock.sleeps == []
    assert await b.acquire() == pytest.approx(0.5)


@pytest.mark.anyio
async def test_sustained_rate_equals_rate() -> None:
    clock = FakeClock()
    b = bucket(clock)
    clock.advance(100)
    for _ in range(48):
        await b.acquire()
    start = clock()
    for _ in range(200):
        await b.acquire()
    assert clock() - start == pytest.approx(200 / 2.0)


@pytest.mark.anyio
async def test_the_level_never_goes_over_the_limit() -> None:
    clock = FakeClock()
    b = bucket(clock)
    for step in range(300):
        await b.acquire()
        assert await b.level() <= b.limit + 1e-9
        if step % 7 == 0:
            clock.advance(1.3)


@pytest.mark.anyio
async def test_reservations_queue_up_when_many_callers_arrive_at_once() -> None:
    clock = FakeClock()
    b = bucket(clock)
    waits = [await b.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.5, 1.0, 1.5, 2.0])


@pytest.mark.anyio
async def test_saturate_marks_the_portal_counter_full() -> None:
    clock = FakeClock()
    b = bucket(clock)
    clock.advance(60)
    assert await b.level() == 0
    await b.saturate()
    assert await b.level() == 50
    assert await b.acquire() == pytest.approx((51 - 48) / 2.0)


@pytest.mark.anyio
async def test_saturate_keeps_queued_reservations() -> None:
    clock = FakeClock()
    b = bucket(clock)
    for _ in range(10):
        await b.reserve()
    await b.saturate()
    assert await b.level() == 58


@pytest.mark.anyio
async def test_headroom_and_enterprise_parameters() -> None:
    clock = FakeClock()
    enterprise = LeakyBucket(250, 5.0, clock=clock, sleep=clock.sleep)
    assert enterprise.limit == 248
    clock.advance(60)
    assert [await enterprise.reserve() for _ in range(248)] == [0] * 248
    assert await enterprise.reserve() == pytest.approx(0.2)
    tiny = LeakyBucket(2, 1.0, clock=clock, sleep=clock.sleep, headroom=5)
    assert tiny.limit == 1


@pytest.mark.parametrize(
    ("capacity", "rate", "headroom"), [(0, 2.0, 2.0), (50, 0.0, 2.0), (50, 2.0, -1.0)]
)
def test_bad_parameters_are_refused(capacity: float, rate: float, headroom: float) -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="capacity"):
        LeakyBucket(capacity, rate, clock=clock, sleep=clock.sleep, headroom=headroom)


@pytest.mark.anyio
async def test_state_is_shared_between_buckets() -> None:
    clock = FakeClock()
    state = MemoryBucketState()
    one = bucket(clock, state=state)
    two = bucket(clock, state=state)
    clock.advance(60)
    for _ in range(24):
        await one.reserve()
        await two.reserve()
    assert await one.reserve() == pytest.approx(0.5)
    assert await two.level() == 49
    assert await state.load() == (49, clock())


@pytest.mark.anyio
async def test_stored_level_drains_from_its_own_timestamp() -> None:
    clock = FakeClock()
    state = MemoryBucketState((30.0, clock() - 5))
    assert await bucket(clock, state=state).level() == 20


@pytest.mark.anyio
async def test_a_clock_behind_the_stored_time_does_not_drain_twice() -> None:
    clock = FakeClock()
    state = MemoryBucketState((10.0, clock() + 30))
    b = bucket(clock, state=state)
    await b.reserve()
    assert await state.load() == (11.0, clock() + 30)


class RecordingState:
    """A BucketState that counts atomic updates, standing in for a store-backed one."""

    def __init__(self) -> None:
        self.value: BucketLevel | None = None
        self.updates = 0

    async def load(self) -> BucketLevel | None:
        return self.value

    async def update(self, fn: Callable[[BucketLevel | None], BucketLevel]) -> BucketLevel:
        self.updates += 1
        self.value = fn(self.value)
        return self.value


@pytest.mark.anyio
async def test_one_atomic_update_per_request_and_nothing_written_at_construction() -> None:
    """Building a bucket touches no state: a shared one lives in the database."""
    clock = FakeClock()
    state = RecordingState()
    b = bucket(clock, state=state)
    assert (state.value, state.updates) == (None, 0)
    await b.reserve()
    await b.reserve()
    await b.saturate()
    assert state.updates == 3


@pytest.mark.anyio
async def test_a_fresh_process_counts_from_full_at_its_start_whatever_is_stored() -> None:
    """`start_full`: the stored level says empty, but others may have spent it meanwhile."""
    clock = FakeClock()
    state = MemoryBucketState((0.0, clock()))
    b = LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep, state=state, start_full=True)
    clock.advance(4)  # full at construction, drained by 8 since
    assert await b.reserve() == 0
    assert await b.level() == pytest.approx(48 - 8 + 1)
    assert await b.reserve() == 0, "only the first reservation applies the assumption"


@pytest.mark.anyio
async def test_until_room_says_when_a_request_would_pass_at_once_and_reserves_nothing() -> None:
    clock = FakeClock()
    state = MemoryBucketState((50.0, clock()))  # two over the limit (50 - headroom 2)
    b = LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep, state=state)
    assert await b.until_room() == pytest.approx(1.5), "51 must drain to 48"
    assert await b.level() == pytest.approx(50.0), "asking reserved nothing"
    clock.advance(1.5)
    assert await b.until_room() == 0
    await b.reserve()
    assert await b.until_room() == pytest.approx(0.5), "a reservation counts"


@pytest.mark.anyio
async def test_until_room_of_a_fresh_process_counts_from_full() -> None:
    clock = FakeClock()
    state = MemoryBucketState((0.0, clock()))
    b = LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep, state=state, start_full=True)
    assert await b.until_room() == pytest.approx(0.5)
    clock.advance(30)
    assert await b.until_room() == 0


# -- operating guard ---------------------------------------------------------------------


def guard(clock: FakeClock) -> OperatingGuard:
    return OperatingGuard(clock=clock, limit=480.0, slow_from=0.8, max_delay=10.0)


def test_no_delay_below_the_slow_down_threshold() -> None:
    clock = FakeClock()
    g = guard(clock)
    assert g.delay("user.get") == 0
    g.record("user.get", {"operating": 383.9, "operating_reset_at": clock() + 30})
    assert g.delay("user.get") == 0


def test_delay_grows_as_operating_approaches_the_limit() -> None:
    clock = FakeClock()
    g = guard(clock)
    g.record("user.get", {"operating": 432, "operating_reset_at": clock() + 30})
    half = g.delay("user.get")
    g.record("user.get", {"operating": 470, "operating_reset_at": clock() + 30})
    assert half == pytest.approx(5.0)
    assert half < g.delay("user.get") <= 10.0
    assert g.delay("im.chat.user.add") == 0


def test_at_the_limit_the_method_waits_for_reset_at() -> None:
    clock = FakeClock()
    g = guard(clock)
    g.record("user.get", {"operating": 481, "operating_reset_at": clock() + 42})
    assert g.delay("user.get") == pytest.approx(42)
    clock.advance(42)
    assert g.delay("user.get") == 0  # stale once a basket dropped; the next reply renews it


def test_block_holds_only_that_method_until_reset_at() -> None:
    clock = FakeClock()
    g = guard(clock)
    until = g.block("im.chat.user.add", clock() + 120)
    assert until == clock() + 120
    assert g.blocked_until("IM.CHAT.USER.ADD") == until
    assert g.delay("im.chat.user.add") == pytest.approx(120)
    assert g.delay("user.get") == 0
    assert g.blocked_until("user.get") is None
    clock.advance(120)
    assert g.blocked_until("im.chat.user.add") is None
    assert g.delay("im.chat.user.add") == 0


def test_block_without_reset_at_uses_the_last_known_reset_or_one_basket() -> None:
    clock = FakeClock()
    g = guard(clock)
    g.record("user.get", {"operating": 100, "operating_reset_at": clock() + 17})
    assert g.block("user.get") == clock() + 17
    assert g.block("department.get", clock() - 5) == clock() + 60


def test_record_ignores_missing_or_garbage_time() -> None:
    clock = FakeClock()
    g = guard(clock)
    g.record("user.get", None)
    g.record("user.get", {"operating": "lots"})
    g.record("user.get", {})
    assert g.delay("user.get") == 0
    g.record("user.get", {"operating": "470"})
    assert g.delay("user.get") == pytest.approx(10 * 86 / 96)


def test_guard_refuses_bad_parameters() -> None:
    with pytest.raises(ValueError, match="positive"):
        OperatingGuard(clock=FakeClock(), slow_from=1.0)


@pytest.mark.anyio
async def test_assume_full_raises_a_low_level_but_never_lowers_a_high_one() -> None:
    from bot.rest.bucket import LeakyBucket, MemoryBucketState
    from tests.fakes import FakeClock

    clock = FakeClock()
    state = MemoryBucketState((0.0, clock()))
    bucket = LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep, state=state)
    assert await bucket.level() == 0.0
    await bucket.assume_full()
    assert await bucket.level() == bucket.limit
    await bucket.saturate()
    await bucket.assume_full()
    assert await bucket.level() == 50.0
