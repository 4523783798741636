"""What the reconcile commands run on: settings, a clock, a store and a portal client.

Commands build a `Runtime` from the process (real clock, stdio); tests build one around the
in-process harness (fake clock, fake portal transport, the harness's store). `open_session`
gives a worker wired exactly like `serve`'s — same executors, same store-shared rate budget —
so `sync` goes through the same queue, limits and audit as events do.
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

from bot.errors import NoDatabase
from bot.reload import RulesHolder
from bot.rest import LeakyBucket, PortalClient
from bot.rules import RuleSet
from bot.settings import Settings
from bot.store import MEMORY_URL, open_existing_store, open_store
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
async def open_session(
    runtime: Runtime, ruleset: RuleSet, *, read_only: bool = False
) -> AsyncIterator[Session]:
    """`read_only` (plan, explain): never create a database; with none, read an empty one
    in memory (nothing applied, nothing queued) and say so in `Session.no_database`."""
    from bot.wiring import build_worker  # the composition root imports the executors

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
        )
        try:
            yield Session(runtime, store, worker, missing)
        finally:
            await http.aclose()
    finally:
        if owned:
            await store.close()


@asynccontextmanager
async def open_client(runtime: Runtime) -> AsyncIterator[PortalClient]:
    """A client of its own (no store): for read-only checks that must not create a database."""
    settings = runtime.settings
    async with httpx.AsyncClient(transport=runtime.transport, timeout=10.0) as http:
        bucket = LeakyBucket(
            settings.burst, settings.rate, clock=runtime.clock, sleep=runtime.sleep
        )
        yield PortalClient(http, settings.require_webhook(), bucket=bucket)
