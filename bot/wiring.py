"""The composition root: the only place that builds clients, stores and workers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
from starlette.applications import Starlette

from bot import retention, web
from bot.actions import EXECUTORS, SETTLE_EACH
from bot.chatbot.fetch import BotFetcher, fetch_health
from bot.departments import DepartmentDirectory
from bot.errors import NoDatabase
from bot.events import Verifier
from bot.executor import WorkContext
from bot.hires import HirePoller
from bot.metrics import Metrics, metrics_endpoint
from bot.reconcile.schedule import reconcile_schedule
from bot.reconcile.session import Runtime, Session
from bot.reload import RulesHolder
from bot.rest import LeakyBucket, OperatingGuard, PortalClient, StoreBucketState
from bot.routing import Router
from bot.rules import RuleSet, load_rules
from bot.services import Services
from bot.settings import Settings
from bot.store import MEMORY_URL, open_existing_store, open_store
from bot.store.aio import AsyncStore
from bot.worker import Worker, WorkerConfig
from bot.workerproc import WorkerProcess

log = logging.getLogger("autojoin")


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
    worker_process: WorkerProcess | None = None,
) -> Services:
    """Everything `serve` needs; `transport` lets tests and the demo aim at the fake portal.

    The worker runs in this process (`run_worker`), in `worker_process` (the front only
    starts, wakes and asks it; it runs the pull intakes and the background loops), or apart.

    Settings and rules are checked before the database is opened: a misconfigured start
    fails with the variable's name and leaves nothing behind (no file, no connection)."""
    # No token at all is a pull-only service (bot fetch, hire poll); a front without a worker
    # would then have nothing to do, so it still needs one.
    worker_apart = worker_process is not None
    if worker_apart:
        run_worker = False
    pull_ok = run_worker or worker_apart or not accept_events
    tokens = settings.push_tokens if pull_ok else settings.require_tokens()
    verifier = Verifier(
        # a worker alone takes no events, so it needs no token (its verifier refuses all)
        tokens=tuple(t.reveal() for t in tokens) if accept_events else (),
        member_id=settings.member_id,
        domain=settings.portal_domain,
        max_age=settings.max_event_age,
    )
    if run_worker or worker_apart:
        settings.require_webhook()
    database_url = settings.require_database_url()
    rules = load_rules(settings.rules_path)
    metrics = Metrics(router.events)
    metrics.set_rules(rules.digest)
    store = AsyncStore(open_store(database_url, urgent=True))
    # The worker and the background loops get a connection (and thread) of their own: a
    # claim of 20,000 jobs or a locked rate-budget row never sits in front of an event's
    # commit. The database decides who waits, not a Python queue.
    back = AsyncStore(open_store(database_url, migrate=False))
    holder = RulesHolder(rules, settings.rules_path, on_swap=lambda r: metrics.set_rules(r.digest))
    services = Services(settings, clock, store, back, holder, router, verifier, metrics)
    if worker_process is not None:
        services.child = worker_process
        services.background.append(worker_process.run)
        services.health_checks.append(worker_process.health)
        if settings.bot_fetch:
            services.health_checks.append(lambda: fetch_health(services.store))
    else:
        services.background.append(retention.periodic(back, settings, clock))
    if run_worker:
        services.worker, services.http = build_worker(
            settings,
            back,
            holder,
            clock=clock,
            sleep=sleep,
            transport=transport,
            config=worker_config,
            metrics=metrics,
        )
        services.background.append(
            reconcile_schedule(back, services.worker, holder, settings, clock=clock)
        )
        _pollers(services, sleep)
    fetch, hires = _pulls(settings) if run_worker or worker_apart else (False, False)
    log.info(
        "intakes: pushed events %s, bot fetch %s, hire poll %s%s",
        ("on" if verifier.tokens else "off (no B24_APP_TOKEN, no webhook-mode bot)")
        if accept_events
        else "taken by `serve`",
        f"every {settings.bot_poll_seconds:g} s" if fetch else "off",
        f"every {settings.hire_poll_seconds:g} s" if hires else "off",
        " (in the worker process)" if worker_apart and (fetch or hires) else "",
    )
    return services


def _pulls(settings: Settings) -> tuple[bool, bool]:
    """Which pull intakes run beside a worker: the bot fetch, the hire poll."""
    # A pushed ONUSERADD is keyed by its auth[member_id]; without knowing it, a polled hire
    # would get another key and could be handled twice. A worker process takes no pushes
    # itself, so this asks the settings, not its verifier.
    pushes = bool(settings.push_tokens)
    hires = settings.hire_poll_seconds > 0 and (not pushes or bool(settings.member_id))
    return settings.bot_fetch, hires


def _pollers(services: Services, sleep: Callable[[float], Awaitable[None]]) -> None:
    """The pull intakes: they need the portal client, so they run beside a worker."""
    settings, worker = services.settings, services.worker
    assert worker is not None
    # Pulled events carry no auth: they are keyed by the configured portal, the way pushed
    # ones are by theirs (set B24_MEMBER_ID when both intakes may see the same event).
    portal = (settings.member_id, settings.portal_domain or worker.ctx.client.webhook.host)
    common = (worker.ctx.client, services.back_store, services.intake, settings, portal)
    fetch, hires = _pulls(settings)
    if fetch:
        services.fetcher = BotFetcher(*common, clock=services.clock, sleep=sleep)
        services.background.append(services.fetcher.run)
        services.health_checks.append(lambda: fetch_health(services.store))
    if settings.hire_poll_seconds > 0 and not hires:
        log.warning("hire poll off: set B24_MEMBER_ID to run it beside pushed events")
    elif hires:
        services.hires = HirePoller(*common, clock=services.clock, sleep=sleep)
        services.background.append(services.hires.run)


def build_worker(
    settings: Settings,
    store: AsyncStore,
    rules: RulesHolder,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
    config: WorkerConfig | None = None,
    metrics: Metrics,
) -> tuple[Worker, httpx.AsyncClient]:
    webhook = settings.require_webhook()
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10.0, connect=5.0))
    bucket = LeakyBucket(
        settings.burst,
        settings.rate,
        clock=clock,
        sleep=sleep,
        state=StoreBucketState(store, clock),
        start_full=True,
    )
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
    worker = Worker(
        store, EXECUTORS, ctx, clock=clock, sleep=sleep, config=config, settle_each=SETTLE_EACH
    )
    return worker, http


def create_app(services: Services, *, metrics_route: bool = True) -> Starlette:
    endpoint = metrics_endpoint(services.metrics, services.refresh_metrics)
    return web.create_app(services, metrics_app=endpoint if metrics_route else None)


@asynccontextmanager
async def open_session(
    runtime: Runtime, ruleset: RuleSet, *, read_only: bool = False
) -> AsyncIterator[Session]:
    """A worker wired like `serve`'s, for `plan` and `sync`; the store is the runtime's or
    opened (and closed) here. `read_only` (plan, explain): never create a database; with
    none, read an empty one in memory (nothing applied, nothing queued) and say so in
    `Session.no_database`."""
    settings = runtime.settings
    store = runtime.store
    owned = store is None
    missing = ""
    if store is None:
        url = settings.require_database_url()
        try:
            store = AsyncStore(open_existing_store(url) if read_only else open_store(url))
        except NoDatabase as exc:
            missing = str(exc)
            store = AsyncStore(open_store(MEMORY_URL))
    try:
        worker, http = build_worker(
            settings,
            store,
            RulesHolder(ruleset),
            clock=runtime.clock,
            sleep=runtime.sleep,
            transport=runtime.transport,
            metrics=Metrics(()),
        )
        try:
            yield Session(runtime, store, worker, missing)
        finally:
            await http.aclose()
    finally:
        if owned:
            await store.close()
