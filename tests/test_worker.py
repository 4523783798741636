"""The worker's failure policy, unit by unit: real store (SQLite file), fake portal over ASGI.

The executors here are small test functions handed to the real `Worker` (its registry is an
argument); everything they return goes through the real `settle_many`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from bot.errors import PortalWideError
from bot.executor import Executor, WorkContext
from bot.jobs import ADD_TO_CHAT, BOT_REPLY, DEAD, DONE, PENDING, AuditEntry, Job, NewJob
from bot.outcomes import Dead, Done, Result, Retry
from bot.store.aio import AsyncStore
from bot.worker import PAUSE_KEY, PauseState, Worker, WorkerConfig, backoff
from tests.fakes import FakeClock
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio

CONFIG = WorkerConfig(retry_base=10.0, retry_cap=1000.0, probe_base=30.0, probe_cap=100.0)


@dataclass
class Rig:
    harness: Harness
    store: AsyncStore
    ctx: WorkContext

    def worker(
        self, executors: dict[str, Executor], seed: int = 7, config: WorkerConfig = CONFIG
    ) -> Worker:
        h = self.harness
        return Worker(
            self.store,
            executors,
            self.ctx,
            clock=h.clock,
            sleep=h.clock.sleep,
            config=config,
            owner="w-test",
            rng=random.Random(seed),
        )

    async def enqueue(self, *payloads: dict[str, object], kind: str = ADD_TO_CHAT) -> None:
        jobs = [NewJob(kind, p, dedupe_key=f"{kind}:{i}") for i, p in enumerate(payloads)]
        await self.store.enqueue(jobs, self.harness.clock())

    async def jobs(self) -> list[Job]:
        return sorted(await self.store.jobs(), key=lambda j: j.id)


@asynccontextmanager
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_harness(tmp_path) as h:
        assert h.services.worker is not None
        # A fresh process counts the portal's bucket as full; a minute later it has drained,
        # so a claim here does not first wait for room (that wait has its own test).
        h.clock.advance(60)
        yield Rig(h, h.services.back_store, h.services.worker.ctx)


def answering(result: Result) -> Executor:
    async def run(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
        return {job.id: result for job in jobs}

    return run


# -- backoff -------------------------------------------------------------------
@pytest.mark.parametrize("attempts", range(0, 14))
def test_backoff_doubles_with_a_quarter_of_jitter_and_respects_the_cap(attempts: int) -> None:
    raw = min(600.0, 2.0 * 2.0 ** max(0, attempts - 1))
    delays = [backoff(attempts, 2.0, 600.0, random.Random(seed)) for seed in range(200)]
    assert all(0.75 * raw <= d <= min(600.0, 1.25 * raw) for d in delays)
    assert len(set(delays)) > 100  # jittered, not one value
    if raw < 600.0:
        assert min(delays) < raw < max(delays)


def test_backoff_is_reproducible_from_its_rng() -> None:
    first = [backoff(n, 2.0, 600.0, random.Random(3)) for n in range(1, 8)]
    assert first == [backoff(n, 2.0, 600.0, random.Random(3)) for n in range(1, 8)]


# -- results -------------------------------------------------------------------
async def test_done_settles_with_followups_audit_and_ledger(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        now = r.harness.clock()
        entry = AuditEntry(now, None, "rule-a", 5, 6, False, "added")
        follow = NewJob(BOT_REPLY, {"x": 1}, dedupe_key="follow")
        result = Done(followups=(follow,), audit=(entry,), ledger=(("rule-a", 5, 6),))
        await r.enqueue({"chat_id": 5, "user_id": 6})
        assert await r.worker({ADD_TO_CHAT: answering(result)}).step() == 1
        first, second = await r.jobs()
        assert (first.state, first.attempts, first.lease_owner) == (DONE, 1, None)
        assert (second.kind, second.state, second.dedupe_key) == (BOT_REPLY, PENDING, "follow")
        assert [(h.chat_id, h.job_id) for h in await r.store.history()] == [(5, first.id)]
        assert await r.store.ledger() == [("rule-a", 5, 6, now)]


async def test_retry_backs_off_from_the_attempts_spent(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1})
        worker = r.worker({ADD_TO_CHAT: answering(Retry("HTTP_5XX", "bad gateway"))})
        delays = []
        for attempt in (1, 2, 3):
            now = r.harness.clock()
            assert await worker.step() == 1
            [job] = await r.jobs()
            assert (job.state, job.attempts, job.last_code) == (PENDING, attempt, "HTTP_5XX")
            assert job.last_error == "bad gateway"
            raw = 10.0 * 2 ** (attempt - 1)
            assert 0.75 * raw <= job.run_after - now <= 1.25 * raw
            delays.append(job.run_after - now)
            assert await worker.step() == 0  # not due yet
            r.harness.clock.advance(job.run_after - now)
        assert delays == sorted(delays)


async def test_retry_with_poll_comes_back_at_the_fixed_interval(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1})
        worker = r.worker({ADD_TO_CHAT: answering(Retry("WAITING", "adds pending", poll=2.0))})
        for _ in range(4):  # no growth with attempts, no jitter
            now = r.harness.clock()
            await worker.step()
            [job] = await r.jobs()
            assert job.run_after == now + 2.0
            r.harness.clock.advance(2.0)
        assert job.attempts == 4


async def test_not_before_wins_over_a_shorter_backoff_but_not_a_longer_one(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        now = r.harness.clock()
        await r.enqueue({"n": 1}, kind=ADD_TO_CHAT)
        await r.enqueue({"n": 2}, kind=BOT_REPLY)
        later = Retry("QUERY_LIMIT_EXCEEDED", "slow down", not_before=now + 500.0)
        earlier = Retry("OPERATION_TIME_LIMIT", "budget", not_before=now + 1.0)
        worker = r.worker({ADD_TO_CHAT: answering(later), BOT_REPLY: answering(earlier)})
        assert await worker.step() == 2
        add, reply = await r.jobs()
        assert add.run_after == now + 500.0
        assert 7.5 <= reply.run_after - now <= 12.5  # the backoff (10 s ± 25%) is later


async def test_dead_keeps_the_hint_and_its_audit(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        now = r.harness.clock()
        entry = AuditEntry(now, None, "rule-a", 5, 6, False, "dead", "ACCESS_ERROR")
        await r.enqueue({"n": 1})
        dead = Dead("ACCESS_ERROR", "remove the chat from rules.yaml", (entry,))
        worker = r.worker({ADD_TO_CHAT: answering(dead)})
        await worker.step()
        [job] = await r.jobs()
        assert (job.state, job.last_code, job.last_error) == (
            DEAD,
            "ACCESS_ERROR",
            "remove the chat from rules.yaml",
        )
        assert [(h.outcome, h.job_id) for h in await r.store.history()] == [("dead", job.id)]
        r.harness.clock.advance(10_000)
        assert await worker.step() == 0


async def test_a_job_without_a_result_is_retried(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1}, {"n": 2})

        async def half(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            return {job.id: Done() for job in jobs if job.payload["n"] == 1}

        await r.worker({ADD_TO_CHAT: half}).step()
        one, two = await r.jobs()
        assert one.state == DONE
        assert (two.state, two.last_code, two.attempts) == (PENDING, "NO_RESULT", 1)


async def test_a_kind_without_an_executor_is_never_claimed(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1}, kind="retired.kind")
        await r.enqueue({"n": 2})
        assert await r.worker({ADD_TO_CHAT: answering(Done())}).step() == 1
        unknown, known = await r.jobs()
        assert (unknown.state, unknown.attempts, known.state) == (PENDING, 0, DONE)


async def test_unknown_kind_jobs_that_reach_the_runner_die_with_the_reason(tmp_path: Path) -> None:
    # `step` claims only registered kinds; this guards the runner itself.
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1}, kind="retired.kind")
        worker = r.worker({})
        claimed = await r.store.claim(worker.owner, r.harness.clock(), 60, 10)
        await worker._run_kind("retired.kind", claimed, [job.id for job in claimed])
        [job] = await r.jobs()
        assert (job.state, job.last_code) == (DEAD, "UNKNOWN_KIND")
        assert job.last_error == "no executor for job kind retired.kind"


async def test_a_result_for_a_job_taken_over_meanwhile_is_discarded(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        clock = r.harness.clock
        await r.enqueue({"n": 1})

        async def slow(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            clock.advance(CONFIG.lease_seconds + 1)  # the lease ran out meanwhile ...
            assert len(await r.store.claim("thief", clock(), 60, 10)) == 1  # ... and was taken
            entry = AuditEntry(clock(), None, "rule-a", 5, 6, False, "added")
            return {job.id: Done(audit=(entry,), ledger=(("rule-a", 5, 6),)) for job in jobs}

        assert await r.worker({ADD_TO_CHAT: slow}).step() == 1
        [job] = await r.jobs()
        assert (job.state, job.lease_owner, job.attempts) == ("running", "thief", 2)
        assert await r.store.history() == []
        assert await r.store.ledger() == []


# -- crashes -------------------------------------------------------------------
async def test_an_executor_crash_isolates_the_one_bad_job(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1}, {"n": 2, "bad": True}, {"n": 3})
        calls: list[list[int]] = []

        async def fragile(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            calls.append([int(job.payload["n"]) for job in jobs])
            if any(job.payload.get("bad") for job in jobs):
                raise KeyError("unreadable payload")
            return {job.id: Done() for job in jobs}

        assert await r.worker({ADD_TO_CHAT: fragile}).step() == 3
        assert calls == [[1, 2, 3], [1], [2], [3]]
        one, two, three = await r.jobs()
        assert (one.state, three.state) == (DONE, DONE)
        assert (two.state, two.attempts, two.last_code) == (PENDING, 1, "INTERNAL_ERROR")
        assert two.last_error == "KeyError in the chat.add executor"
        assert "unreadable payload" not in (two.last_error or "")


async def test_a_crash_of_one_kind_leaves_the_other_kinds_alone(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1}, kind=BOT_REPLY)
        await r.enqueue({"n": 2})

        async def broken(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            raise RuntimeError("bug")

        worker = r.worker({ADD_TO_CHAT: answering(Done()), BOT_REPLY: broken})
        assert await worker.step() == 2
        reply, add = await r.jobs()
        assert (reply.state, reply.last_code, add.state) == (PENDING, "INTERNAL_ERROR", DONE)


# -- portal-wide errors --------------------------------------------------------
def wide(code: str = "NO_AUTH_FOUND") -> Executor:
    async def run(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
        raise PortalWideError("im.chat.user.add", code, "webhook code is wrong")

    return run


async def test_a_portal_wide_error_pauses_and_releases_without_spending(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        clock = r.harness.clock
        start = clock()
        await r.enqueue({"n": 1}, {"n": 2})
        await r.enqueue({"n": 3}, kind=BOT_REPLY)
        calls: list[str] = []

        async def reply(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            calls.append("reply")
            return {job.id: Done() for job in jobs}

        worker = r.worker({ADD_TO_CHAT: wide(), BOT_REPLY: reply})
        assert await worker.step() == 3
        assert calls == []  # the adds run first; the pause stops the rest of the step
        jobs = await r.jobs()
        assert [(j.state, j.attempts, j.lease_owner) for j in jobs] == [(PENDING, 0, None)] * 3
        state = await worker.pause_state()
        assert state == PauseState("NO_AUTH_FOUND", "webhook code is wrong", start, start + 30, 1)
        assert PauseState.load(await r.store.get_state(PAUSE_KEY)) == state
        clock.advance(29)
        assert await worker.step() == 0  # paused: nothing is claimed before the probe is due
        assert r.harness.portal.calls_to("user.get") == []


async def test_probes_back_off_keep_the_reason_and_resume(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        clock, portal = r.harness.clock, r.harness.portal
        start = clock()
        await r.enqueue({"n": 1})
        worker = r.worker({ADD_TO_CHAT: wide()})
        await worker.step()
        clock.advance(30)
        portal.revoke_webhook()  # the probe fails with a portal-wide error again
        assert await worker.step() == 0
        state = await worker.pause_state()
        assert state is not None
        assert (state.since, state.probes, state.next_probe) == (start, 2, clock() + 60)
        assert state.code != "NO_AUTH_FOUND"  # the probe's own answer is the news
        portal.restore_webhook()
        clock.advance(60)
        portal.fail_next("user.get", "INTERNAL_SERVER_ERROR")  # transient: learns nothing
        assert await worker.step() == 0
        again = await worker.pause_state()
        assert again is not None
        assert (again.code, again.reason, again.probes) == (state.code, state.reason, 3)
        assert again.next_probe == clock() + 100  # capped at probe_cap
        clock.advance(100)
        worker.executors = {ADD_TO_CHAT: answering(Done())}
        assert await worker.step() == 1  # the probe succeeds: the pause is lifted, jobs run
        assert await worker.pause_state() is None
        [job] = await r.jobs()
        assert (job.state, job.attempts) == (DONE, 1)
        assert len(portal.calls_to("user.get")) == 3


# -- the loop ------------------------------------------------------------------
async def test_the_loop_outlives_a_failing_step_and_stops_on_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(tmp_path) as r:
        clock: FakeClock = r.harness.clock
        await r.enqueue({"n": 1})
        failed = anyio.Event()
        calls = 0

        async def flaky(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            nonlocal calls
            calls += 1
            if calls == 1:  # a followup the store cannot serialise: settling raises
                failed.set()
                unserialisable = NewJob(BOT_REPLY, {"x": object()})
                return {job.id: Done(followups=(unserialisable,)) for job in jobs}
            worker.request_stop()
            return {job.id: Done() for job in jobs}

        config = WorkerConfig(idle_poll=0.01, probe_base=0.05, lease_seconds=60.0)
        worker = r.worker({ADD_TO_CHAT: flaky}, config=config)
        with anyio.fail_after(20), caplog.at_level(logging.ERROR, "autojoin.worker"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run_forever)
                await failed.wait()
                clock.advance(61)  # the failed step's lease ends: the job comes back
                worker.wake()
                await worker.finished.wait()
        assert "worker step (adds) failed" in caplog.text
        [job] = await r.jobs()
        assert (job.state, job.attempts, calls) == (DONE, 2, 2)


async def test_an_idle_loop_wakes_for_new_work_and_lets_adds_gather(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        clock: FakeClock = r.harness.clock
        seen: list[int] = []

        async def record(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            seen.append(len(jobs))
            worker.request_stop()
            return {job.id: Done() for job in jobs}

        config = WorkerConfig(idle_poll=5.0, coalesce_window=0.2)
        worker = r.worker({ADD_TO_CHAT: record}, config=config)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run_forever)
                await anyio.sleep(0.05)  # the loop found nothing and waits
                await r.enqueue({"n": 1}, {"n": 2})
                worker.wake()  # what POST /events does after a commit
                await worker.finished.wait()
        assert seen == [2]  # both adds in one run
        assert 0.2 in clock.sleeps  # the coalescing window, on the injected clock


async def test_a_claim_waits_out_the_bucket_queue_once_and_takes_what_arrived_meanwhile(
    tmp_path: Path,
) -> None:
    """The bucket is over its limit: the step waits until a request would pass, then
    claims, so the add that became due while it waited rides in the same call. A request
    someone else reserved meanwhile does not make it wait again (no starvation)."""
    async with rig(tmp_path) as r:
        clock, bucket = r.harness.clock, r.ctx.client.bucket
        await r.enqueue({"n": 1})
        await bucket.saturate()  # the portal said QUERY_LIMIT_EXCEEDED: level 50
        start = clock()
        seen: list[list[int]] = []
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            if not slept:
                await r.store.enqueue([NewJob(ADD_TO_CHAT, {"n": 2}, "late")], clock())
                await bucket.reserve()  # a reply, a poll: it queues ahead of the claim
            slept.append(seconds)
            await clock.sleep(seconds)

        async def record(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            seen.append(sorted(job.payload["n"] for job in jobs))
            assert clock() - start == pytest.approx(1.5), "claimed once 51 drained to 48"
            return {job.id: Done() for job in jobs}

        worker = Worker(
            r.store, {ADD_TO_CHAT: record}, r.ctx, clock=clock, sleep=sleep, owner="w-test"
        )
        assert await worker.step() == 2
        assert seen == [[1, 2]]
        assert slept == [pytest.approx(1.5)], "one wait, not one per newcomer"
        assert await bucket.level() == pytest.approx(48.0), "50 + the other 1 - 3 drained: no more"


async def test_adds_run_while_a_reply_waits_for_its_turn(tmp_path: Path) -> None:
    """Two lanes: a reply stuck in the bucket (here: until released) does not hold up an
    add that arrives meanwhile; one loop would run the add only after the reply."""
    async with rig(tmp_path) as r:
        reply_started, release_reply, added = anyio.Event(), anyio.Event(), anyio.Event()
        order: list[str] = []

        async def reply(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            reply_started.set()
            await release_reply.wait()
            order.append("reply")
            return {job.id: Done() for job in jobs}

        async def add(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            order.append("add")
            added.set()
            return {job.id: Done() for job in jobs}

        config = WorkerConfig(idle_poll=0.05, coalesce_window=0.0)
        worker = r.worker({ADD_TO_CHAT: add, BOT_REPLY: reply}, config=config)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run_forever)
                await r.enqueue({"say": "hi"}, kind=BOT_REPLY)
                worker.wake()
                await reply_started.wait()
                await r.enqueue({"n": 1})
                worker.wake()
                with anyio.move_on_after(5):
                    await added.wait()
                release_reply.set()
                worker.request_stop()
                await worker.finished.wait()
        assert order == ["add", "reply"]
        assert [j.state for j in await r.jobs()] == [DONE, DONE]


async def test_the_heartbeat_extends_the_leases_of_a_long_step(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        clock = r.harness.clock
        await r.enqueue({"n": 1})
        config = WorkerConfig(lease_seconds=0.06)  # the heartbeat runs every 20 ms of real time

        async def slow(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            clock.advance(10)
            expected = clock() + config.lease_seconds
            for _ in range(1000):  # polls the store: the heartbeat is another task
                if (await r.jobs())[0].lease_until == expected:
                    return {job.id: Done() for job in jobs}
                await anyio.sleep(0.01)
            raise AssertionError("the lease was never extended")

        with anyio.fail_after(20):
            assert await r.worker({ADD_TO_CHAT: slow}, config=config).step() == 1
        [job] = await r.jobs()
        assert job.state == DONE


async def test_jobs_held_by_a_cancelled_step_are_released_unspent(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.enqueue({"n": 1}, {"n": 2})
        started = anyio.Event()

        async def stuck(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
            started.set()
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        worker = r.worker({ADD_TO_CHAT: stuck})
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.step)
                await started.wait()
                tg.cancel_scope.cancel()
        assert [j.lease_owner for j in await r.jobs()] == ["w-test", "w-test"]
        await worker.release_held()
        assert [(j.state, j.attempts) for j in await r.jobs()] == [(PENDING, 0)] * 2
        await worker.release_held()  # nothing held any more: a no-op


# -- pause state ----------------------------------------------------------------
def test_pause_state_round_trips_through_json() -> None:
    state = PauseState("NO_AUTH_FOUND", "fix the webhook — «срочно»", 1.5, 31.5, 2)
    assert PauseState.load(state.dump()) == state


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "not json",
        "[]",
        "null",
        '"a string"',
        '{"code": "X"}',
        '{"code": "X", "reason": "r", "since": "soon", "next_probe": 1, "probes": 1}',
        '{"code": "X", "reason": "r", "since": 1, "next_probe": 1, "probes": [1]}',
    ],
)
def test_an_unreadable_pause_is_no_pause(raw: str | None) -> None:
    assert PauseState.load(raw) is None
