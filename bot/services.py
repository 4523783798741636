"""`Services`: what the HTTP front, the worker and the background loops share.

Built once by the composition root (`bot.wiring.build_services`); the app's lifespan runs
`Services.running()`, which keeps the worker and the watchers alive beside the server.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from bot.chatbot.fetch import BotFetcher
from bot.events import Verifier
from bot.hires import HirePoller
from bot.intake import Intake
from bot.metrics import Metrics
from bot.reconcile.schedule import reconcile_health
from bot.reload import RulesHolder
from bot.routing import Router
from bot.settings import Settings
from bot.store.aio import AsyncStore
from bot.worker import PAUSE_KEY, PauseState, Worker
from bot.workerproc import WorkerProcess

log = logging.getLogger("autojoin")

STOP_GRACE = 5.0


@dataclass
class Services:
    """What the app and the worker share; built once by `build_services`."""

    settings: Settings
    clock: Callable[[], float]
    store: AsyncStore  # the acknowledgement path's connection
    back_store: AsyncStore  # the worker's and the background loops' connection
    rules: RulesHolder
    router: Router
    verifier: Verifier
    metrics: Metrics
    worker: Worker | None = None  # the worker in this process (`serve --inline-worker`)
    child: WorkerProcess | None = None  # or in its own (`serve`)
    http: httpx.AsyncClient | None = None
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    intake: Intake = field(init=False)
    fetcher: BotFetcher | None = None  # the pull intakes, when on
    hires: HirePoller | None = None
    health_checks: list[Callable[[], Awaitable[list[dict[str, object]]]]] = field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        self.intake = Intake(
            self.settings, self.router, self.rules, self.metrics, self.clock, self.wake_worker
        )

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()
        elif self.child is not None:
            self.child.wake()

    def observe_event(self, name: str, outcome: str) -> None:
        self.metrics.event(name, outcome)

    def observe_rejected(self, reason: str) -> None:
        self.metrics.reject(reason)

    async def health_reasons(self) -> list[dict[str, object]]:
        reasons: list[dict[str, object]] = list(self.rules.health())
        pause = PauseState.load(await self.store.get_state(PAUSE_KEY))
        if pause is not None:
            reasons.append({"check": "portal", "code": pause.code, "message": pause.reason})
        reasons += await reconcile_health(self.store, self.settings.max_removals)
        for check in self.health_checks:
            reasons += await check()
        return reasons

    async def refresh_metrics(self) -> bytes | None:
        """Update the job gauges; the worker process's families, when it runs apart."""
        self.metrics.set_job_counts(await self.store.counts())
        return await self.child.metrics() if self.child is not None else None

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
                    if self.child is not None:
                        self.child.signal(signal.SIGHUP)
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
                await self.aclose()

    async def aclose(self) -> None:
        """Close the portal client and both store connections."""
        if self.http is not None:
            await self.http.aclose()
        await self.back_store.close()
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
