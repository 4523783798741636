"""The whole service wired to the fake portal over HTTP, with a clock tests control.

Scenario tests post real-format bodies to the real app and drive the real worker; the
only stand-ins are the portal (a stateful fake that speaks Bitrix24's wire format) and time.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

import handlers
from bot.actions import EXECUTORS, SETTLE_EACH
from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN
from bot.services import Services
from bot.settings import Settings
from bot.wiring import build_services, create_app
from bot.worker import Worker, WorkerConfig
from tests.fakes import FakeBeat, FakeClock

REPO = Path(__file__).resolve().parent.parent
FORM = "application/x-www-form-urlencoded"


@dataclass
class Harness:
    portal: FakePortal
    services: Services
    client: httpx.AsyncClient
    clock: FakeClock

    async def post(self, body: bytes, content_type: str = FORM) -> httpx.Response:
        return await self.client.post(
            self.services.settings.events_path, content=body, headers={"content-type": content_type}
        )

    def replica(self, owner: str, beat: FakeBeat | None = None) -> Worker:
        """Another worker on the same database and portal, wired like `serve`'s: a second
        replica, or the process that restarts after a crash (with a new identity)."""
        main = self.services.worker
        assert main is not None
        return Worker(
            self.services.back_store,
            EXECUTORS,
            main.ctx,
            clock=self.clock,
            sleep=self.clock.sleep,
            config=main.config,
            owner=owner,
            settle_each=SETTLE_EACH,
            beat=beat.sleep if beat is not None else anyio.sleep,
        )

    async def drain(self, max_rounds: int = 200) -> None:
        """Run the worker until no job is pending, moving the clock to each retry."""
        worker = self.services.worker
        assert worker is not None
        for _ in range(max_rounds):
            await worker.run_until_idle()
            waiting = await self.services.store.jobs(("pending", "running"), limit=1000)
            if not waiting:
                return
            due = min(job.lease_until or job.run_after for job in waiting)
            self.clock.advance(max(0.0, due - self.clock()) + 0.001)
        raise AssertionError("jobs still pending after draining")


def make_settings(tmp_path: Path, portal: FakePortal, **env: str) -> Settings:
    rules = tmp_path / "rules.yaml"
    if not rules.exists():
        shutil.copy(REPO / "rules.yaml", rules)
    values: Mapping[str, str] = {
        "B24_WEBHOOK_URL": portal.webhook_url("http://127.0.0.1:9"),
        "B24_APP_TOKEN": APP_TOKEN,
        "AUTOJOIN_RULES": str(rules),
        "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp_path / 'autojoin.db'}",
        "AUTOJOIN_COALESCE_MS": "0",
        **env,
    }
    return Settings.load(values, env_file=tmp_path / "absent.env")


@asynccontextmanager
async def open_harness(
    tmp_path: Path,
    *,
    portal: FakePortal | None = None,
    clock: FakeClock | None = None,
    config: WorkerConfig | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **env: str,
) -> AsyncIterator[Harness]:
    clock = clock or FakeClock()
    portal = portal or FakePortal(clock=clock)
    settings = make_settings(tmp_path, portal, **env)
    services = build_services(
        settings,
        router=handlers.router,
        clock=clock,
        sleep=clock.sleep,
        transport=transport or httpx.ASGITransport(app=portal.app),
        worker_config=config,
    )
    app = create_app(services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot.test")
    try:
        yield Harness(portal, services, client, clock)
    finally:
        await client.aclose()
        await services.aclose()
