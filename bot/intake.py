"""One door for every event, pushed (`POST /events`) or pulled (bot fetch, hire poll).

The pure handler turns the event into jobs, the keys are scoped to the portal it came from,
and the jobs are committed with the event's once-only key before anyone is told "accepted"
(or, for a pulled event, before its offset is acknowledged). Whatever the intake, the same
event gets the same key, so one delivered twice, or both pushed and pulled, runs once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.events import Event
from bot.jobs import NewJob
from bot.jobs import event_id as stable_event_id
from bot.metrics import Metrics
from bot.reload import RulesHolder
from bot.routing import Dispatch, HandlerContext, Router
from bot.settings import Settings
from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.web")


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of one event: accepted, duplicate or ignored."""

    status: str
    jobs: int = 0
    event_id: str | None = None
    reason: str = ""


@dataclass
class Intake:
    settings: Settings
    router: Router
    rules: RulesHolder
    metrics: Metrics
    clock: Callable[[], float]
    wake: Callable[[], None] = lambda: None
    _ctx: HandlerContext | None = field(default=None, init=False, repr=False)

    def _context(self) -> HandlerContext:
        """One per rules version: building it per event cost more than the routing."""
        rules = self.rules.current
        ctx = self._ctx
        if ctx is None or ctx.rules is not rules:
            client_id = self.settings.bot_client_id
            ctx = HandlerContext(rules, client_id.reveal() if client_id else None)
            self._ctx = ctx
        return ctx

    def dispatch(self, event: Event) -> Dispatch | None:
        """Run the event's pure handler and scope its keys to the portal it came from."""
        handler = self.router.handler_for(event.name)
        if handler is None:
            return None
        result = handler(event, self._context())
        if result is None:
            return None
        event_key = f"{event.portal}:{result.key}"
        jobs = tuple(
            NewJob(  # built directly: dataclasses.replace costs more on the hot path
                job.kind,
                job.payload,
                f"{event_key}:{job.dedupe_key}" if job.dedupe_key else None,
                event_key,
                job.group,
                job.run_after,
            )
            for job in result.jobs
        )
        return Dispatch(event_key, jobs, result.note)

    async def take(self, event: Event, store: AsyncStore, *, via: str = "") -> Taken:
        """Dispatch and commit one event; returns after the commit (or the refusal)."""
        outcome = self.dispatch(event)
        if outcome is None:
            log.info("event %s ignored: unhandled event%s", event.name, via)
            self.metrics.event(event.name, "ignored")
            return Taken("ignored", reason="unhandled event")
        event_id = stable_event_id(outcome.key)
        line = _Line(event_id, event.name, outcome.key, len(outcome.jobs), outcome.note, via)
        fresh = await store.accept_event(
            outcome.key, event.name, outcome.jobs, self.clock(), sink=self._log_group, tag=line
        )
        status = "accepted" if fresh else "duplicate"
        self.metrics.event(event.name, status)
        return Taken(status, len(outcome.jobs) if fresh else 0, event_id)

    def _log_group(self, group: Sequence[tuple[_Line, bool]]) -> None:
        """One log line per group commit (it names every event of it, so each event ID stays
        findable) and one wake-up for the worker: per event, both cost more than the routing."""
        if len(group) == 1:
            ((line, fresh),) = group
            log.info("event %s", line.text(fresh), extra={"event_id": line.event_id})
        else:
            text = "; ".join(line.text(fresh) for line, fresh in group)
            ids = [line.event_id for line, _ in group]
            log.info("events (%d) %s", len(group), text, extra={"event_ids": ids})
        if any(fresh and line.jobs for line, fresh in group):
            self.wake()


@dataclass(frozen=True, slots=True)
class _Line:
    """What the log says about one committed event."""

    event_id: str
    name: str
    key: str
    jobs: int
    note: str
    via: str

    def text(self, fresh: bool) -> str:
        status, jobs = ("accepted", self.jobs) if fresh else ("duplicate", 0)
        note = f" ({self.note})" if self.note else ""
        return f"{self.event_id} {self.name} {status} key={self.key} jobs={jobs}{note}{self.via}"
