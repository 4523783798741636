"""Prometheus metrics with closed label sets.

Every label value comes from a fixed set decided here, so hostile input (a flood of
invented event names, methods or error codes) cannot grow the number of series.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import Response

from bot.errors import (
    BadToken,
    ClientGone,
    ForeignPortal,
    MalformedEvent,
    PayloadTooLarge,
    PushesOff,
    StaleEvent,
    UnsupportedMediaType,
)
from bot.jobs import STATES

OTHER = "other"
# What only a worker moves; under `serve` they come from its worker process (`render_worker`).
WORKER_FAMILIES = frozenset(
    {
        "autojoin_rest_calls",
        "autojoin_rate_limit_wait_seconds",
        "autojoin_event_to_membership_seconds",
    }
)
EVENT_OUTCOMES = frozenset({"accepted", "duplicate", "ignored", "rejected"})
REJECT_REASONS = frozenset(
    {
        cls.reason
        for cls in (
            BadToken,
            ClientGone,
            ForeignPortal,
            MalformedEvent,
            PayloadTooLarge,
            PushesOff,
            StaleEvent,
            UnsupportedMediaType,
        )
    }
    | {"store_unavailable"}
)
REST_METHODS = frozenset(
    {
        "batch",
        "user.get",
        "department.get",
        "im.chat.user.add",
        "im.chat.user.delete",
        "im.chat.user.list",
        "im.dialog.get",
        "imbot.register",
        "imbot.update",
        "imbot.unregister",
        "imbot.bot.list",
        "imbot.command.register",
        "imbot.command.update",
        "imbot.command.unregister",
        "imbot.command.answer",
        "imbot.message.add",
    }
)
REST_CODES = frozenset(
    {
        "ok",
        "QUERY_LIMIT_EXCEEDED",
        "OPERATION_TIME_LIMIT",
        "INTERNAL_SERVER_ERROR",
        "ERROR_UNEXPECTED_ANSWER",
        "ACCESS_DENIED_EXTEND",
        "ACCESS_ERROR",
        "ACCESS_DENIED",
        "CHAT_ID_EMPTY",
        "INVALID_CREDENTIALS",
        "NO_AUTH_FOUND",
        "INSUFFICIENT_SCOPE",
        "PORTAL_DELETED",
        "OVERLOAD_LIMIT",
        "USER_NOT_FOUND",
        "TIMEOUT",
        "NETWORK_ERROR",
    }
)


def _closed(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


class Metrics:
    def __init__(self, known_events: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        self.known_events = frozenset(known_events)
        self._event_children: dict[tuple[str, str], Counter] = {}
        self.events = Counter(
            "autojoin_events_total",
            "Events received, by event name and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "autojoin_events_rejected_total",
            "Requests refused before an event was accepted, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.rest_calls = Counter(
            "autojoin_rest_calls_total",
            "Bitrix24 REST calls, by method and result code",
            ["method", "code"],
            registry=self.registry,
        )
        self.rate_waits = Counter(
            "autojoin_rate_limit_wait_seconds_total",
            "Seconds spent waiting for the client-side leaky bucket",
            registry=self.registry,
        )
        self.jobs = Gauge(
            "autojoin_jobs", "Jobs in the store, by state", ["state"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "autojoin_queue_depth", "Jobs waiting to run (pending)", registry=self.registry
        )
        self.latency = Histogram(
            "autojoin_event_to_membership_seconds",
            "From event acceptance to the membership change being confirmed",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
            registry=self.registry,
        )
        self.rules = Gauge(
            "autojoin_rules_info",
            "The loaded rules file (value 1), labelled with its sha256",
            ["sha256"],
            registry=self.registry,
        )

    def event(self, name: str, outcome: str) -> None:
        """Children are kept by their closed labels (`labels()` locks and checks on every call);
        invented names share the `other` child, so the cache cannot grow either."""
        labels = (_closed(name, self.known_events), _closed(outcome, EVENT_OUTCOMES))
        child = self._event_children.get(labels)
        if child is None:
            child = self._event_children[labels] = self.events.labels(*labels)
        child.inc()

    def reject(self, reason: str) -> None:
        self.rejected.labels(_closed(reason, REJECT_REASONS)).inc()
        self.events.labels(OTHER, "rejected").inc()

    def rest_call(self, method: str, code: str | None) -> None:
        label = "ok" if code is None else _closed(code.upper(), REST_CODES)
        self.rest_calls.labels(_closed(method, REST_METHODS), label).inc()

    def observe(self, method: str, code: str | None) -> None:
        """`CallObserver` for the REST client."""
        self.rest_call(method, code)

    def waited(self, seconds: float) -> None:
        self.rate_waits.inc(seconds)

    def set_rules(self, digest: str) -> None:
        self.rules.clear()
        self.rules.labels(digest[:16]).set(1)

    def set_job_counts(self, counts: dict[str, int]) -> None:
        for state in STATES:
            self.jobs.labels(state).set(counts.get(state, 0))
        self.queue_depth.set(counts.get("pending", 0))

    def render(self, worker: bytes | None = None) -> bytes:
        """Everything, or (with `worker`, a worker process's `render_worker`) the front's own
        families followed by the worker's: one exposition, each family once."""
        if worker is None:
            return generate_latest(self.registry)
        return self._only(lambda name: name not in WORKER_FAMILIES) + worker

    def render_worker(self) -> bytes:
        return self._only(lambda name: name in WORKER_FAMILIES)

    def _only(self, keep: Callable[[str], bool]) -> bytes:
        view = CollectorRegistry(auto_describe=False)
        view.register(_Families([m for m in self.registry.collect() if keep(m.name)]))
        return generate_latest(view)


class _Families:
    """A collector of already collected families: a filtered view of a registry."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def metrics_endpoint(
    metrics: Metrics, refresh: Callable[[], Awaitable[bytes | None]]
) -> Callable[[Request], Awaitable[Response]]:
    """`refresh` updates the gauges and returns a worker process's families, if there is one."""

    async def endpoint(request: Request) -> Response:
        worker = await refresh()
        return Response(metrics.render(worker), media_type=CONTENT_TYPE_LATEST)

    return endpoint
