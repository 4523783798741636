"""The HTTP front: move bytes in, jobs out, answer fast.

Nothing here calls Bitrix24: an event is acknowledged only after its jobs are committed,
and the worker does the rest. Refusals are 4xx with a JSON reason, never 5xx.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.errors import (
    ClientGone,
    EventError,
    PayloadTooLarge,
    StoreError,
    UnsupportedMediaType,
)
from bot.events import Event, parse_event
from bot.jobs import NewJob
from bot.jobs import event_id as stable_event_id
from bot.routing import Dispatch, HandlerContext
from bot.services import Services

log = logging.getLogger("autojoin.web")
_ENCODE = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
).encode


class _Json(JSONResponse):
    """`JSONResponse`'s bytes, from one encoder: `json.dumps` with options builds one per call."""

    def render(self, content: Any) -> bytes:
        return _ENCODE(content).encode("utf-8")


_FORM = "application/x-www-form-urlencoded"


async def read_limited(request: Request, limit: int) -> bytes:
    """Enforce the size limit while streaming, before the body is held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the sender disconnected before the body was complete") from None
    return b"".join(chunks)


def _check_media_type(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media and media != _FORM:
        raise UnsupportedMediaType(f"expected {_FORM}, got {media[:60]!r}")


class _Contexts:
    """One `HandlerContext` per rules version: building it per event cost more than routing."""

    __slots__ = ("_ctx",)

    def __init__(self) -> None:
        self._ctx: HandlerContext | None = None

    def get(self, services: Services) -> HandlerContext:
        rules = services.rules.current
        ctx = self._ctx
        if ctx is None or ctx.rules is not rules:
            client_id = services.settings.bot_client_id
            ctx = HandlerContext(rules, client_id.reveal() if client_id else None)
            self._ctx = ctx
        return ctx


def dispatch_event(
    event: Event, services: Services, contexts: _Contexts | None = None
) -> Dispatch | None:
    """Run the event's pure handler and scope its keys to the portal it came from."""
    handler = services.router.handler_for(event.name)
    if handler is None:
        return None
    result = handler(event, (contexts or _Contexts()).get(services))
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


def create_app(services: Services, *, metrics_app: Any = None) -> Starlette:
    settings = services.settings
    clock: Callable[[], float] = services.clock
    contexts = _Contexts()

    async def events(request: Request) -> Response:
        body = await read_limited(request, settings.max_body)
        _check_media_type(request)
        event = parse_event(body, services.verifier, now=clock())
        outcome = dispatch_event(event, services, contexts)
        if outcome is None:
            log.info("event %s ignored: unhandled event", event.name)
            services.observe_event(event.name, "ignored")
            return _Json({"status": "ignored", "reason": "unhandled event"})
        event_id = stable_event_id(outcome.key)
        fresh = await services.store.accept_event(outcome.key, event.name, outcome.jobs, clock())
        status = "accepted" if fresh else "duplicate"
        services.observe_event(event.name, status)
        log.info(
            "event %s %s %s key=%s jobs=%d%s",
            event_id,
            event.name,
            status,
            outcome.key,
            len(outcome.jobs) if fresh else 0,
            f" ({outcome.note})" if outcome.note else "",
            extra={"event_id": event_id},
        )
        if fresh and outcome.jobs:
            services.wake_worker()
        return _Json(
            {"status": status, "jobs": len(outcome.jobs) if fresh else 0, "event_id": event_id}
        )

    async def healthz(request: Request) -> Response:
        reasons = await services.health_reasons()
        body = {"status": "degraded" if reasons else "ok", "reasons": reasons}
        return JSONResponse(body)

    async def event_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EventError)
        services.observe_rejected(exc.reason)
        log.warning("event refused (%s): %s", exc.reason, exc.message)
        return JSONResponse({"error": exc.reason, "message": exc.message}, exc.http_status)

    async def store_error(request: Request, exc: Exception) -> Response:
        log.error("store unavailable: %s", exc)
        return JSONResponse({"error": "store_unavailable", "message": "try again"}, 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with services.running():
            yield

    routes = [
        Route(settings.events_path, events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if metrics_app is not None:
        routes.append(Route("/metrics", metrics_app, methods=["GET"]))
    return Starlette(
        routes=routes,
        exception_handlers={EventError: event_error, StoreError: store_error},
        lifespan=lifespan,
    )
