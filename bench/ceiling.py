"""The acknowledgement ceiling: what this machine's Starlette + uvicorn can do with an event.

It reads the body and parses it with the same parser as autojoin, then answers 200, under
the same uvicorn settings as `autojoin serve`. autojoin cannot beat this; the ratio between
the two is the cost of verifying, routing and durably committing an event.

    python -m bench.ceiling --port 8123
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.formparse import parse_form


async def events(request: Request) -> Response:
    tree = parse_form(await request.body())
    return JSONResponse({"status": "ok", "fields": len(tree)})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The same keyword arguments as bot/commands/run.py passes for `autojoin serve`.
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
