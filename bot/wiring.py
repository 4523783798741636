"""The composition root: the only place that builds clients, stores and workers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx
from starlette.applications import Starlette

from bot.actions import EXECUTORS, WorkContext
from bot.directory import DepartmentDirectory
from bot.events import Verifier
from bot.ratelimit import StoreBucketState
from bot.rest import LeakyBucket, OperatingGuard, PortalClient
from bot.routing import Router
from bot.rules import RuleSet, load_rules
from bot.settings import Settings
from bot.store import open_store
from bot.store.aio import AsyncStore
from bot.worker import PAUSE_KEY, Worker, WorkerConfig

log = logging.getLogger("autojoin")

STOP_GRACE = 5.0


class RulesHolder:
    """The rules in force; swapped atomically on reload, read once per event."""

    def __init__(self, rules: RuleSet) -> None:
        self.current = rules


@dataclass
class Services:
    settings: Settings
    clock: Callable[[], float]
    store: AsyncStore
    rules: RulesHolder
    router: Router
    verifier: Verifier
    worker: Worker | None = None
    http: httpx.AsyncClient | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def observe_event(self, name: str, outcome: str) -> None:
        key = f"event:{outcome}"
        self.counters[key] = self.counters.get(key, 0) + 1

    def observe_rejected(self, reason: str) -> None:
        key = f"rejected:{reason}"
        self.counters[key] = self.counters.get(key, 0) + 1

    async def health_reasons(self) -> list[dict[str, object]]:
        reasons: list[dict[str, object]] = []
        raw = await self.store.get_state(PAUSE_KEY)
        if raw:
            state = json.loads(raw)
            reasons.append({"check": "portal", "code": state["code"], "message": state["reason"]})
        return reasons

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the worker beside the app; on shutdown finish or release what is in flight."""
        try:
            if self.worker is None:
                yield
                return
            worker = self.worker
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run_forever)
                try:
                    yield
                finally:
                    worker.request_stop()
                    with anyio.move_on_after(STOP_GRACE):
                        await worker.finished.wait()
                    tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await worker.release_held()
        finally:
            with anyio.CancelScope(shield=True):
                if self.http is not None:
                    await self.http.aclose()
                await self.store.close()


def build_services(
    settings: Settings,
    *,
    router: Router,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
    run_worker: bool = True,
    worker_config: WorkerConfig | None = None,
) -> Services:
    """Everything `serve` needs; `transport` lets tests and the demo aim at the fake portal."""
    rules = load_rules(settings.rules_path)
    store = AsyncStore(open_store(settings.database_url.reveal()))
    verifier = Verifier(
        tokens=tuple(t.reveal() for t in settings.require_tokens()),
        member_id=settings.member_id,
        domain=settings.portal_domain,
        max_age=settings.max_event_age,
    )
    holder = RulesHolder(rules)
    services = Services(settings, clock, store, holder, router, verifier)
    if run_worker:
        services.worker, services.http = build_worker(
            settings,
            store,
            holder,
            clock=clock,
            sleep=sleep,
            transport=transport,
            config=worker_config,
        )
    return services


def build_worker(
    settings: Settings,
    store: AsyncStore,
    rules: RulesHolder,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
    config: WorkerConfig | None = None,
) -> tuple[Worker, httpx.AsyncClient]:
    webhook = settings.require_webhook()
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10.0, connect=5.0))
    bucket = LeakyBucket(
        settings.burst,
        settings.rate,
        clock=clock,
        sleep=sleep,
        state=StoreBucketState(store.store, clock),
    )
    bucket.assume_full()
    client = PortalClient(http, webhook, bucket=bucket, operating=OperatingGuard(clock=clock))
    directory = DepartmentDirectory(client, clock=clock, ttl=settings.department_ttl)
    ctx = WorkContext(client, directory, lambda: rules.current, clock)
    config = config or WorkerConfig(
        lease_seconds=settings.lease_seconds,
        retry_cap=settings.retry_cap,
        coalesce_window=settings.coalesce_window,
    )
    worker = Worker(store, EXECUTORS, ctx, clock=clock, sleep=sleep, config=config)
    return worker, http


def create_app(services: Services) -> Starlette:
    from bot.web import create_app as _create

    return _create(services)
