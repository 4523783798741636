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
    PushesOff,
    StoreError,
    UnsupportedMediaType,
)
from bot.events import parse_event
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


def create_app(services: Services, *, metrics_app: Any = None) -> Starlette:
    settings = services.settings
    clock: Callable[[], float] = services.clock

    async def events(request: Request) -> Response:
        if not services.verifier.tokens:
            raise PushesOff(
                "pushed events are off (pull-only): set B24_APP_TOKEN for an outbound "
                "webhook, or AUTOJOIN_BOT_EVENT_MODE=webhook for the bot"
            )
        body = await read_limited(request, settings.max_body)
        _check_media_type(request)
        event = parse_event(body, services.verifier, now=clock())
        taken = await services.intake.take(event, services.store)
        if taken.status == "ignored":
            return _Json({"status": "ignored", "reason": taken.reason})
        return _Json({"status": taken.status, "jobs": taken.jobs, "event_id": taken.event_id})

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
