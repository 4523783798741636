"""What the reconcile commands run on: settings, a clock, a store and a portal client.

Commands build a `Runtime` from the process (real clock, stdio); tests build one around the
in-process harness (fake clock, fake portal transport, the harness's store). A `Session` holds
a worker wired exactly like `serve`'s — same executors, same store-shared rate budget — so
`sync` goes through the same queue, limits and audit as events do; the composition root
builds it (`bot.wiring.open_session`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TextIO

import anyio
import httpx

from bot.rest import LeakyBucket, PortalClient
from bot.settings import Settings
from bot.store.aio import AsyncStore
from bot.worker import Worker


def _stdout() -> TextIO:
    return sys.stdout


def _stderr() -> TextIO:
    return sys.stderr


def _stdin() -> TextIO:
    return sys.stdin


@dataclass
class Runtime:
    settings: Settings
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    transport: httpx.AsyncBaseTransport | None = None
    store: AsyncStore | None = None  # shared with the caller (tests); else opened per command
    out: TextIO = field(default_factory=_stdout)
    err: TextIO = field(default_factory=_stderr)
    stdin: TextIO = field(default_factory=_stdin)

    def print(self, line: str = "") -> None:
        self.out.write(line + "\n")

    def warn(self, line: str) -> None:
        self.err.write(line + "\n")


@dataclass
class Session:
    runtime: Runtime
    store: AsyncStore
    worker: Worker
    no_database: str = ""  # read-only session without a database: why (an empty one is used)

    @property
    def client(self) -> PortalClient:
        return self.worker.ctx.client

    @property
    def webhook_user(self) -> int:
        return self.client.webhook.user_id


@asynccontextmanager
async def open_client(runtime: Runtime) -> AsyncIterator[PortalClient]:
    """A client of its own (no store): for read-only checks that must not create a database."""
    settings = runtime.settings
    async with httpx.AsyncClient(transport=runtime.transport, timeout=10.0) as http:
        bucket = LeakyBucket(
            settings.burst, settings.rate, clock=runtime.clock, sleep=runtime.sleep
        )
        yield PortalClient(http, settings.require_webhook(), bucket=bucket)
