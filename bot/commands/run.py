"""`serve` (HTTP front plus worker) and `worker` (worker only): the long-running processes.

`serve` runs its worker as a child process (`bot.workerproc`): the acknowledgement path and
the worker each get a core. `--inline-worker` keeps both in one process (for one core);
`--no-worker` leaves the worker to a separate `autojoin worker`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import socket
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from bot.errors import ConfigError, ListenError
from bot.listen import bind
from bot.logsafe import configure_logging
from bot.metrics import metrics_endpoint
from bot.rules import load_rules
from bot.settings import Settings
from bot.wiring import build_services, create_app
from bot.workerproc import LINK_FD, WorkerProcess, serve_link

WORKER_NICE = 10  # added to the front's niceness for `serve`'s worker process
log = logging.getLogger("autojoin")


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="receive events and process them")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--no-worker", action="store_true", help="only accept events; run `autojoin worker` apart"
    )
    serve.add_argument(
        "--inline-worker",
        action="store_true",
        help="run the worker in this process, not as a child process (one core)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve GET /metrics on this port only (default: on the main port)",
    )
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="process queued jobs without the HTTP front")
    worker.set_defaults(func=cmd_worker)


def _router() -> Any:
    from handlers import router

    return router


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.load()
    # Without a push token, serve (with its worker) runs pull-only; a front alone needs one.
    settings.require(tokens=args.no_worker, webhook=not args.no_worker, database=True, rules=True)
    load_rules(settings.rules_path)  # positioned errors before a port or a database is taken
    if args.no_worker and args.inline_worker:
        raise ListenError("--no-worker and --inline-worker exclude each other: choose one")
    if args.metrics_port and args.metrics_port == args.port:
        raise ListenError("--metrics-port must differ from --port (or leave it out)")
    sockets = [bind(args.host, args.port)]
    try:
        if args.metrics_port:
            sockets.append(bind(args.host, args.metrics_port, "--metrics-port"))
        return _serve(args, settings, sockets)
    finally:
        for sock in sockets:
            sock.close()


def _serve(args: argparse.Namespace, settings: Settings, sockets: list[socket.socket]) -> int:
    configure_logging(settings.log_level, settings.log_format)
    apart = None if args.no_worker or args.inline_worker else WorkerProcess()
    services = build_services(
        settings, router=_router(), run_worker=args.inline_worker, worker_process=apart
    )
    app = create_app(services, metrics_route=not args.metrics_port)
    freeze_startup_heap()
    path = settings.events_path if settings.events_path == "/events" else "a custom (secret) path"
    log.info("serving on %s:%s, events at %s", args.host, args.port, path)
    servers = [(_server(app), sockets[0])]
    if args.metrics_port:
        endpoint = metrics_endpoint(services.metrics, services.refresh_metrics)
        metrics_app = Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])
        servers.append((_server(metrics_app), sockets[1]))
        log.info("metrics on %s:%s/metrics", args.host, args.metrics_port)
    failed: list[object] = []

    async def run_one(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn's way to say the startup failed (logged above)
            failed.append(exc.code)
        for other, _ in servers:  # one got the signal or failed: stop the others too
            other.should_exit = True

    async def run_all() -> None:
        async with anyio.create_task_group() as tg:
            for server, sock in servers:  # the main one first: it is the outer signal handler
                tg.start_soon(run_one, server, sock)

    anyio.run(run_all)
    if failed:
        raise ConfigError("the server did not start; the error is logged above")
    return 0


def freeze_startup_heap() -> None:
    """What start-up built (modules, settings, rules, the app: ~57,000 objects) lives as long
    as the process. Frozen, it is out of the collector's way: a full collection then scans what
    requests allocate, not all of it (~10 ms each, the acknowledgement path's p99 tail)."""
    gc.collect()
    gc.freeze()


def yield_cpu_to_front() -> None:
    """`serve`'s worker runs at a lower CPU priority than its front: on a busy machine an
    answer to Bitrix24 (which never retries) goes first, and the worker, whose jobs wait in
    the store anyway, takes the cycles the front leaves."""
    with contextlib.suppress(OSError):  # a platform or sandbox without nice: run as we are
        os.nice(WORKER_NICE)


def _server(app: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        lifespan="auto",
    )
    return uvicorn.Server(config)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings.load()
    settings.require(webhook=True, database=True, rules=True)  # takes no events: no token
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings, router=_router(), run_worker=True, accept_events=False)
    freeze_startup_heap()

    link = os.environ.pop(LINK_FD, "")  # set when `serve` started this worker
    if link.isdigit():
        yield_cpu_to_front()
    worker = services.worker
    assert worker is not None

    async def watch_signals(done: anyio.Event) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal %s: stopping", signal.Signals(signum).name)
                done.set()
                return

    async def watch_front(done: anyio.Event) -> None:
        metrics = services.metrics
        await serve_link(int(link), worker.wake, metrics.render_worker)
        log.warning("the serve process is gone: stopping")
        done.set()

    async def run() -> None:
        async with services.running():
            log.info("worker %s running", worker.owner)
            done = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_signals, done)
                if link.isdigit():
                    tg.start_soon(watch_front, done)
                await done.wait()
                tg.cancel_scope.cancel()

    anyio.run(run)
    return 0
