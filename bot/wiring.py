"""The composition root: the only place that builds clients, stores and workers."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette

from bot import retention
from bot.actions import EXECUTORS, WorkContext
from bot.directory import DepartmentDirectory
from bot.events import Verifier
from bot.metrics import Metrics, metrics_endpoint
from bot.ratelimit import StoreBucketState
from bot.reconcile.schedule import reconcile_health, reconcile_schedule
from bot.reload import RulesHolder
from bot.rest import LeakyBucket, OperatingGuard, PortalClient
from bot.routing import Router
from bot.rules import load_rules
from bot.settings import Settings
from bot.store import open_store
from bot.store.aio import AsyncStore
from bot.worker import PAUSE_KEY, Worker, WorkerConfig

log = logging.getLogger("autojoin")

STOP_GRACE = 5.0


@dataclass
class Services:
    """What the app and the worker share; built once by `build_services`."""

    settings: Settings
    clock: Callable[[], float]
    store: AsyncStore
    rules: RulesHolder
    router: Router
    verifier: Verifier
    metrics: Metrics
    worker: Worker | None = None
    http: httpx.AsyncClient | None = None
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def observe_event(self, name: str, outcome: str) -> None:
        self.metrics.event(name, outcome)

    def observe_rejected(self, reason: str) -> None:
        self.metrics.reject(reason)

    async def health_reasons(self) -> list[dict[str, object]]:
        reasons: list[dict[str, object]] = list(self.rules.health())
        raw = await self.store.get_state(PAUSE_KEY)
        if raw:
            state = json.loads(raw)
            reasons.append({"check": "portal", "code": state["code"], "message": state["reason"]})
        reasons += await reconcile_health(self.store, self.settings.max_removals)
        return reasons

    async def refresh_metrics(self) -> None:
        self.metrics.set_job_counts(await self.store.counts())

    async def watch_rules(self) -> None:
        """Reload rules.yaml when its bytes change (polling: no extra dependency)."""
        interval = self.settings.rules_poll
        if interval <= 0:
            return
        while True:
            await anyio.sleep(interval)
            if self.rules.changed():
                self.rules.reload()

    async def watch_sighup(self) -> None:
        try:
            with anyio.open_signal_receiver(signal.SIGHUP) as signals:
                async for _ in signals:
                    log.info("SIGHUP: reloading rules")
                    self.rules.reload()
        except (NotImplementedError, RuntimeError, ValueError):
            return  # not the main thread, or a platform without signals

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the worker and watchers beside the app; on shutdown finish or release work."""
        worker = self.worker
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(supervised, self.watch_rules)
                tg.start_soon(self.watch_sighup)
                for task in self.background:
                    tg.start_soon(supervised, task)
                if worker is not None:
                    tg.start_soon(worker.run_forever)
                try:
                    yield
                finally:
                    if worker is not None:
                        worker.request_stop()
                        with anyio.move_on_after(STOP_GRACE):
                            await worker.finished.wait()
                    tg.cancel_scope.cancel()
            if worker is not None:
                with anyio.CancelScope(shield=True):
                    await worker.release_held()
        finally:
            with anyio.CancelScope(shield=True):
                if self.http is not None:
                    await self.http.aclose()
                await self.store.close()


async def supervised(
    task: Callable[[], Coroutine[Any, Any, None]],
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> None:
    """Keep a background loop alive: a crash is logged and the loop restarts with backoff,
    instead of ending the lifespan and leaving a process that accepts events it never runs."""
    delay = 1.0
    name = getattr(task, "__qualname__", repr(task))
    while True:
        try:
            await task()
            return
        except Exception:
            log.exception("background task %s failed; restarting in %.0fs", name, delay)
        await sleep(delay)
        delay = min(300.0, delay * 2)


def build_services(
    settings: Settings,
    *,
    router: Router,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
    run_worker: bool = True,
    worker_config: WorkerConfig | None = None,
    accept_events: bool = True,
) -> Services:
    """Everything `serve` needs; `transport` lets tests and the demo aim at the fake portal.

    Settings and rules are checked before the database is opened: a misconfigured start
    fails with the variable's name and leaves nothing behind (no file, no connection)."""
    verifier = Verifier(
        # a worker alone takes no events, so it needs no token (its verifier refuses all)
        tokens=tuple(t.reveal() for t in settings.require_tokens()) if accept_events else (),
        member_id=settings.member_id,
        domain=settings.portal_domain,
        max_age=settings.max_event_age,
    )
    if run_worker:
        settings.require_webhook()
    database_url = settings.require_database_url()
    rules = load_rules(settings.rules_path)
    metrics = Metrics(router.events)
    metrics.set_rules(rules.digest)
    store = AsyncStore(open_store(database_url))
    holder = RulesHolder(rules, settings.rules_path, on_swap=lambda r: metrics.set_rules(r.digest))
    services = Services(settings, clock, store, holder, router, verifier, metrics)
    services.background.append(retention.periodic(store, settings, clock))
    if run_worker:
        services.worker, services.http = build_worker(
            settings,
            store,
            holder,
            clock=clock,
            sleep=sleep,
            transport=transport,
            config=worker_config,
            metrics=metrics,
        )
        services.background.append(
            reconcile_schedule(store, services.worker, holder, settings, clock=clock)
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
    metrics: Metrics | None = None,
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
    client = PortalClient(
        http, webhook, bucket=bucket, operating=OperatingGuard(clock=clock), observer=metrics
    )
    directory = DepartmentDirectory(client, clock=clock, ttl=settings.department_ttl)
    ctx = WorkContext(
        client,
        directory,
        lambda: rules.current,
        clock,
        metrics=metrics,
        store=store,
        settings=settings,
    )
    config = config or WorkerConfig(
        lease_seconds=settings.lease_seconds,
        retry_cap=settings.retry_cap,
        coalesce_window=settings.coalesce_window,
    )
    worker = Worker(store, EXECUTORS, ctx, clock=clock, sleep=sleep, config=config)
    return worker, http


def create_app(services: Services, *, metrics_route: bool = True) -> Starlette:
    from bot.web import create_app as _create

    endpoint = metrics_endpoint(services.metrics, services.refresh_metrics)
    return _create(services, metrics_app=endpoint if metrics_route else None)
