"""Claim → execute → complete, retry, dead or pause.

Failure policy by error type: retryable errors back off exponentially with jitter (capped)
and never give up, so an accepted event survives any outage; per-job errors go dead with a
hint; portal-wide errors pause the whole queue without spending attempts, and a slow probe
resumes it.

Crash recovery is a short lease kept alive by a heartbeat. A claim holds its jobs for
`lease_seconds` (6 s by default); while the step runs, a heartbeat in real time extends the
leases every third of that, independently of the executor, so a slow portal call never loses
its claim, while a killed worker's jobs are claimable by anyone within one lease. A worker
identity that survives restarts was not chosen: a restarted process cannot tell its dead
predecessor from a live twin with the same name, and two processes sharing an identity
would settle each other's jobs; a 6 s lease already brings the work back in seconds.
Claims of coalescing kinds take every due job of at most `coalesce_groups` chats (what one
`batch` request carries), up to `coalesce_limit` jobs, so one crash strands at most one
request's worth of work, for one lease.

`run_forever` runs two lanes, each its own loop of steps: coalescing kinds (adds, removals,
department lookups) and per-request kinds (the bot's requests and replies). A step of replies
costs a request per job at the portal's pace; in one loop, adds that arrived meanwhile waited
for all of them. Each step first waits out the rate bucket's queue, then claims.

Jobs whose repetition a person would notice (a bot reply) are settled one by one, each right
after its own portal call (`settle_each`), so a crash can repeat at most the one whose
commit it interrupted; the others are settled per group, one commit for thousands of adds.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import anyio

from bot.errors import PortalError, PortalWideError, StoreError
from bot.executor import Executor, WorkContext
from bot.jobs import ADD_TO_CHAT, REMOVE_FROM_CHAT, RESOLVE_USER, Job, event_id
from bot.outcomes import Dead, Done, Result, Retry
from bot.store.aio import AsyncStore
from bot.store.base import Settlement

log = logging.getLogger("autojoin.worker")

PAUSE_KEY = "queue.pause"
# Kinds whose executors cost a few requests however many jobs they get: claimed in bulk.
COALESCED = (RESOLVE_USER, ADD_TO_CHAT, REMOVE_FROM_CHAT)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """A claim of coalescing kinds takes the due jobs of at most `coalesce_groups` groups (a
    chat and history setting: `membership.GROUPS_PER_BATCH` of them fill one `batch`
    request), oldest first, at most `coalesce_limit` jobs: due adds still ride together, one
    request per claim, and one crash strands at most that one request's work, for one lease.
    Kinds that cost a request per job are claimed `batch_size` at a time."""

    lease_seconds: float = 6.0
    batch_size: int = 50
    coalesce_limit: int = 5_000
    coalesce_groups: int = 16
    retry_base: float = 1.0  # the first retry after ~1 s (±25%): the bucket spaces them anyway
    retry_cap: float = 600.0
    probe_base: float = 30.0
    probe_cap: float = 300.0
    coalesce_window: float = 0.2
    idle_poll: float = 1.0


@dataclass(frozen=True, slots=True)
class PauseState:
    """Why the whole queue is paused, since when, and when the portal is asked again.

    Stored as JSON under `PAUSE_KEY`, so every process (and `autojoin jobs`) sees it."""

    code: str
    reason: str
    since: float
    next_probe: float
    probes: int

    def dump(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, raw: str | None) -> PauseState | None:
        """None when nothing (or nothing readable) is stored: an unreadable pause is no pause."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(
                str(data["code"]),
                str(data["reason"]),
                float(data["since"]),
                float(data["next_probe"]),
                int(data["probes"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(slots=True)
class Lane:
    """One loop of `run_forever`: the kinds it claims, and its own wake-up."""

    name: str
    kinds: tuple[str, ...]
    wake: anyio.Event = field(default_factory=anyio.Event)


def lanes(kinds: Collection[str]) -> list[Lane]:
    """Coalescing kinds (adds, removals, department lookups: a few requests for any number
    of jobs) and per-request kinds (the bot's requests and replies: one request each) run
    in separate loops, so that neither waits for the other's turns in the bucket."""
    merged = tuple(k for k in COALESCED if k in kinds)
    single = tuple(k for k in kinds if k not in COALESCED)
    return [Lane(name, ks) for name, ks in (("adds", merged), ("requests", single)) if ks]


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential with ±25% jitter, so retries from one outage do not arrive together."""
    raw = min(cap, base * 2.0 ** max(0, attempts - 1))
    return min(cap, raw * rng.uniform(0.75, 1.25))


class Worker:
    def __init__(
        self,
        store: AsyncStore,
        executors: Mapping[str, Executor],
        ctx: WorkContext,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        config: WorkerConfig = WorkerConfig(),
        owner: str | None = None,
        rng: random.Random | None = None,
        settle_each: Collection[str] = frozenset(),
        beat: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        """`beat` is the heartbeat's sleep: real time, whatever `sleep` is, because a lease
        is about wall-clock liveness; tests pass one they can step."""
        self.store = store
        self.executors = executors
        self.ctx = ctx
        self.clock = clock
        self.sleep = sleep
        self.config = config
        self.owner = owner or f"worker-{uuid.uuid4().hex[:10]}"
        self.rng = rng or random.Random()
        self.settle_each = frozenset(settle_each)
        self.beat = beat
        self._lanes = lanes(list(executors))
        self._stopping = False
        self._holding: list[list[int]] = []  # per running step: the job ids it still holds
        self.finished = anyio.Event()

    # -- pause -------------------------------------------------------------
    async def pause_state(self) -> PauseState | None:
        return PauseState.load(await self.store.get_state(PAUSE_KEY))

    async def _pause(self, exc: PortalWideError, previous: PauseState | None) -> None:
        now = self.clock()
        probes = previous.probes if previous else 0
        delay = min(self.config.probe_cap, self.config.probe_base * 2**probes)
        state = PauseState(
            code=exc.code,
            reason=exc.hint or exc.description or exc.code,
            since=previous.since if previous else now,
            next_probe=now + delay,
            probes=probes + 1,
        )
        await self.store.set_state(PAUSE_KEY, state.dump(), now)
        if previous is None:
            log.error("queue paused: %s (%s); probing every %.0fs", exc.code, state.reason, delay)

    async def _probe(self, state: PauseState) -> bool:
        """True when the portal answers again and the pause is lifted."""
        if self.clock() < state.next_probe:
            return False
        try:
            await self.ctx.client.call("user.get", {"ID": self.ctx.client.webhook.user_id})
        except PortalWideError as exc:
            await self._pause(exc, state)
            return False
        except PortalError:  # transient: nothing learned, so the pause keeps its reason
            same = PortalWideError("probe", state.code, state.reason)
            await self._pause(same, state)
            return False
        await self.store.set_state(PAUSE_KEY, None, self.clock())
        log.warning("queue resumed after %s", state.code)
        return True

    # -- one step ------------------------------------------------------------
    async def step(self, kinds: Collection[str] | None = None) -> int:
        """Claim what is due of `kinds` (default: every kind) and run it; return how many
        jobs were handled."""
        handled, _ = await self._step(tuple(self.executors if kinds is None else kinds))
        return handled

    async def _step(self, kinds: tuple[str, ...]) -> tuple[int, bool]:
        """(jobs handled, whether the claim was full: more is waiting)."""
        paused = await self.pause_state()
        if paused is not None and not await self._probe(paused):
            return 0, False
        await self._wait_for_room()
        now, lease = self.clock(), self.config.lease_seconds
        coalesced = [k for k in COALESCED if k in kinds and k in self.executors]
        others = [k for k in kinds if k in self.executors and k not in COALESCED]
        jobs = (
            await self.store.claim(self.owner, now, lease, self.config.batch_size, others)
            if others
            else []
        )
        merged = (
            await self.store.claim(
                self.owner,
                now,
                lease,
                self.config.coalesce_limit,
                coalesced,
                groups=self.config.coalesce_groups,
            )
            if coalesced
            else []
        )
        full = (
            len(jobs) >= self.config.batch_size
            or len(merged) >= self.config.coalesce_limit
            or len({job.group for job in merged}) >= self.config.coalesce_groups
        )
        jobs += merged
        if not jobs:
            return 0, full
        held = [job.id for job in jobs]
        self._holding.append(held)
        by_kind: dict[str, list[Job]] = {}
        # Coalesced kinds first: a reply waiting on this step's adds then sees them done.
        for job in sorted(jobs, key=lambda j: j.kind not in COALESCED):
            by_kind.setdefault(job.kind, []).append(job)
        wide: PortalWideError | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat, now, held)
            try:
                for kind, group in by_kind.items():
                    await self._run_kind(kind, group, held)
            except PortalWideError as exc:
                wide = exc
            tg.cancel_scope.cancel()
        if wide is not None:
            await self._pause(wide, None)
            await self._release(held)
        # Not in `finally`: a cancelled step leaves its jobs for release_held.
        self._holding = [h for h in self._holding if h is not held]
        return len(jobs), full

    async def _wait_for_room(self) -> None:
        """Wait out the bucket's queue as it stands, then claim: a claim made first would
        queue in the bucket holding its jobs (a crash strands them for a lease) while adds
        that arrive meanwhile wait for the next claim and its own turn. Claimed after the
        wait, the batch carries everything due by then and queues only behind what others
        reserved meanwhile. One wait, not a loop: a stream of others' requests must not
        starve the claim."""
        wait = await self.ctx.client.until_room()
        if wait >= 0.001:  # below that, a rounding remainder: sleeping it moves no clock
            await self.sleep(wait)

    async def _heartbeat(self, claimed_at: float, held: list[int]) -> None:
        """Extend the leases of held jobs while the step runs (a drained bucket, a slow call).

        The first beat comes a third of a lease after the claim's `now`, sooner if the claim
        itself waited (a busy database). A failed extension (database away) is logged and tried
        at the next beat; the step goes on, and if the database stays away the leases lapse and
        another worker may take over, which is what a lease is for."""
        lease = self.config.lease_seconds
        wait = max(0.0, lease / 3 - (self.clock() - claimed_at))
        while True:
            await self.beat(wait)
            wait = lease / 3
            if not held:
                continue
            try:
                await self.store.extend_lease(held, self.owner, self.clock() + lease)
            except StoreError as exc:
                log.warning("lease heartbeat failed (%s); trying again in %.0fs", exc, lease / 3)

    async def _run_kind(self, kind: str, jobs: Sequence[Job], held: list[int]) -> None:
        executor = self.executors.get(kind)
        if executor is None:
            missing = Dead("UNKNOWN_KIND", f"no executor for job kind {kind}")
            await self._settle(jobs, dict.fromkeys((job.id for job in jobs), missing), held)
            return
        if kind in self.settle_each:
            # One job, one call, one commit: a crash repeats at most the call in flight.
            for job in jobs:
                await self._settle([job], await self._execute(kind, executor, [job]), held)
            return
        results = await self._execute(kind, executor, jobs)
        await self._settle(jobs, results, held)

    async def _execute(
        self, kind: str, executor: Executor, jobs: Sequence[Job]
    ) -> dict[int, Result]:
        """Run the executor; if it crashes, run the jobs one by one so a single unreadable
        job is retried with backoff (traceback logged) and cannot hold up the others."""
        try:
            return await executor(jobs, self.ctx)
        except PortalWideError:
            raise
        except Exception as exc:
            if len(jobs) == 1:
                job = jobs[0]
                log.exception(
                    "job %s %s: the executor failed",
                    job.id,
                    kind,
                    extra={"event_id": event_id(job.event_key), "job_id": str(job.id)},
                )
                crashed = Retry("INTERNAL_ERROR", f"{type(exc).__name__} in the {kind} executor")
                return {job.id: crashed}
        results: dict[int, Result] = {}
        for job in jobs:
            results.update(await self._execute(kind, executor, [job]))
        return results

    async def _settle(
        self, jobs: Sequence[Job], results: Mapping[int, Result], held: list[int]
    ) -> None:
        """One transaction for the whole group: thousands of adds cost one commit."""
        now = self.clock()
        items: list[Settlement] = []
        for job in jobs:
            result = results.get(job.id) or Retry("NO_RESULT", "executor returned no result")
            if isinstance(result, Done):  # the common case: no log line, no event id to hash
                items.append(
                    Settlement(job.id, "done", result.followups, result.audit, result.ledger)
                )
                continue
            extra = {"event_id": event_id(job.event_key), "job_id": str(job.id)}
            if isinstance(result, Retry):
                delay = (
                    result.poll
                    if result.poll is not None
                    else backoff(
                        job.attempts, self.config.retry_base, self.config.retry_cap, self.rng
                    )
                )
                run_after = max(now + delay, result.not_before or 0.0)
                items.append(
                    Settlement(
                        job.id, "retry", run_after=run_after, code=result.code, error=result.error
                    )
                )
                log.info(
                    "job %s %s: retry in %.1fs (%s)",
                    job.id,
                    job.kind,
                    run_after - now,
                    result.code,
                    extra=extra,
                )
            else:
                items.append(
                    Settlement(
                        job.id, "dead", audit=result.audit, code=result.code, error=result.error
                    )
                )
                log.error(
                    "job %s %s dead: %s: %s",
                    job.id,
                    job.kind,
                    result.code,
                    result.error,
                    extra=extra,
                )
        lost = await self.store.settle_many(self.owner, now, items)
        for job_id in lost:
            log.warning("job %s: lease lost to another worker; result discarded", job_id)
        settled = {job.id for job in jobs}
        held[:] = [i for i in held if i not in settled]

    # -- loops ---------------------------------------------------------------
    async def run_until_idle(self, max_steps: int = 10_000) -> None:
        """Run every job that is due now (tests and `sync`)."""
        for _ in range(max_steps):
            if await self.step() == 0:
                return

    def wake(self) -> None:
        for lane in self._lanes:
            lane.wake.set()

    async def run_forever(self) -> None:
        """One loop per lane (`lanes`): a step of replies, each a request at the portal's
        pace, never holds up the adds that arrive meanwhile, nor a batch the replies."""
        try:
            async with anyio.create_task_group() as tg:
                for lane in self._lanes:
                    tg.start_soon(self._run_lane, lane)
        finally:
            self.finished.set()

    async def _run_lane(self, lane: Lane) -> None:
        failures = 0
        while not self._stopping:
            try:
                handled, full = await self._step(lane.kinds)
            except Exception:
                # The database (or anything else) failed: the loop must outlive it.
                # Claimed jobs come back when their lease ends.
                failures += 1
                delay = min(self.config.probe_base, self.config.idle_poll * 2 ** (failures - 1))
                log.exception("worker step (%s) failed; trying again in %.0fs", lane.name, delay)
                await self._rest(delay, lane)
                continue
            failures = 0
            if self._stopping:
                continue
            if handled:
                if lane.wake.is_set() and not full:
                    # Events arrived while this step ran: give their adds the same
                    # window to merge as after an idle wake-up. Under a stream this
                    # turns many small steps (each a claim, a batch with member lists
                    # and a settle, all in front of the acks' commits) into few large
                    # ones. A full batch means a backlog: no waiting then.
                    lane.wake = anyio.Event()
                    await self.sleep(self.config.coalesce_window)
                continue
            with anyio.move_on_after(self.config.idle_poll):
                await lane.wake.wait()
            if lane.wake.is_set() and not self._stopping:
                lane.wake = anyio.Event()
                # Let concurrent adds merge; in the requests lane it spaces the steps that
                # every accepted event's wake-up would otherwise trigger.
                await self.sleep(self.config.coalesce_window)

    async def _rest(self, seconds: float, lane: Lane) -> None:
        """Wait `seconds`, or less if a stop is requested (new events do not cut it short)."""
        with anyio.move_on_after(seconds):
            while not self._stopping:
                await lane.wake.wait()
                if not self._stopping:
                    lane.wake = anyio.Event()

    def request_stop(self) -> None:
        """Stop claiming new work; the current steps may finish."""
        self._stopping = True
        self.wake()

    async def release_held(self) -> None:
        """Jobs still held go back to the queue without spending attempts."""
        holding, self._holding = self._holding, []
        for held in holding:
            await self._release(held)

    async def _release(self, held: list[int]) -> None:
        if held:
            ids = list(held)
            held.clear()
            await self.store.release(ids, self.owner, self.clock())
            log.info("released %d in-flight jobs", len(ids))
