"""`serve` (HTTP front plus worker) and `worker` (worker only): the long-running processes."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

import anyio
import uvicorn

from bot.logsafe import configure_logging
from bot.settings import Settings
from bot.wiring import build_services, create_app

log = logging.getLogger("autojoin")


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="receive events and process them")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-worker", action="store_true", help="only accept events; run `autojoin worker` apart"
    )
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="process queued jobs without the HTTP front")
    worker.set_defaults(func=cmd_worker)


def _router() -> Any:
    from handlers import router

    return router


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.load()
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings, router=_router(), run_worker=not args.no_worker)
    app = create_app(services)
    log.info("serving on %s:%s, events at %s", args.host, args.port, settings.events_path)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings.load()
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings, router=_router(), run_worker=True)

    async def run() -> None:
        async with services.running():
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                log.info("worker %s running", services.worker.owner if services.worker else "?")
                async for signum in signals:
                    log.info("signal %s: stopping", signal.Signals(signum).name)
                    return

    anyio.run(run)
    return 0
