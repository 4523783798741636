"""`autojoin demo`: the sandbox story, on a fake portal in this process. No account, no network."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

import handlers
from bot.jobs import AuditEntry
from bot.logsafe import configure_logging
from bot.sandbox import FakePortal
from bot.sandbox.company import sample_company
from bot.sandbox.events import APP_TOKEN, user_add
from bot.settings import Settings
from bot.wiring import Services, build_services, create_app

DEMO_RULES = Path(__file__).resolve().parent.parent / "sandbox" / "demo_rules.yaml"
Out = Callable[[str], None]


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="replay a sandbox story against a fake Bitrix24 portal")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    configure_logging("ERROR")  # the story is the output; warnings would interleave with it
    with tempfile.TemporaryDirectory(prefix="autojoin-demo-") as tmp:
        return anyio.run(run_demo, Path(tmp), print)


class Story:
    def __init__(self, portal: FakePortal, services: Services, client: httpx.AsyncClient, out: Out):
        self.portal = portal
        self.services = services
        self.client = client
        self.out = out
        self.step = 0

    def chapter(self, title: str) -> None:
        self.step += 1
        self.out(f"\n[{self.step}] {title}")

    async def post(self, body: bytes, label: str) -> dict[str, Any]:
        started = time.perf_counter()
        response = await self.client.post(
            self.services.settings.events_path,
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        ms = (time.perf_counter() - started) * 1000
        payload: dict[str, Any] = response.json()
        status = payload.get("status", payload.get("error"))
        jobs = payload.get("jobs", 0)
        code = response.status_code
        self.out(f"    POST /events {label} -> {code} {status} ({jobs} job(s), {ms:.1f} ms)")
        return payload

    async def work(self) -> list[AuditEntry]:
        before = self.portal.http_requests
        seen = {(e.at, e.chat_id, e.user_id) for e in await self.services.store.history(limit=1000)}
        assert self.services.worker is not None
        await self.services.worker.run_until_idle()
        new = [
            e
            for e in await self.services.store.history(limit=1000)
            if (e.at, e.chat_id, e.user_id) not in seen
        ]
        self.out(f"    worker: {self.portal.http_requests - before} portal request(s)")
        for entry in sorted(new, key=lambda e: e.chat_id):
            self.out("    " + describe(entry, self.portal))
        if not new:
            self.out("    (no membership change)")
        return new


def describe(entry: AuditEntry, portal: FakePortal) -> str:
    chat = portal.state.chats.get(entry.chat_id)
    title = f"{chat.title} ({entry.chat_id})" if chat else str(entry.chat_id)
    mark = {"added": "+", "already_member": "=", "dropped": "-", "dead": "!"}.get(
        entry.outcome, "?"
    )
    history = "history hidden " if entry.hide_history else "history visible"
    why = entry.detail or entry.rule or ""
    code = f" [{entry.code}]" if entry.code else ""
    return f"{mark} {entry.outcome:<14} {title:<28} {history}  {why}{code}"


async def run_demo(tmp: Path, out: Out) -> int:
    portal = FakePortal(sample_company())
    rules = tmp / "rules.yaml"
    shutil.copy(DEMO_RULES, rules)
    settings = Settings.load(
        {
            "B24_WEBHOOK_URL": portal.webhook_url("http://127.0.0.1:9"),
            "B24_APP_TOKEN": APP_TOKEN,
            "AUTOJOIN_RULES": str(rules),
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp / 'autojoin.db'}",
            "AUTOJOIN_COALESCE_MS": "0",
        },
        env_file=tmp / "absent.env",
    )
    services = build_services(
        settings, router=handlers.router, transport=httpx.ASGITransport(app=portal.app)
    )
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://autojoin.demo") as client:
        story = Story(portal, services, client, out)
        ruleset = services.rules.current
        out("autojoin demo: Example Corp on a fake Bitrix24 portal (no account, no network)")
        out(f"rules: {len(ruleset.rules)} rules from {DEMO_RULES.name} (copied to {rules})")
        try:
            await tell(story)
        finally:
            if services.http is not None:
                await services.http.aclose()
            await services.store.close()
    out(f"\nportal: {portal.http_requests} HTTP request(s) in total; nothing left in the queue.")
    return 0


async def tell(story: Story) -> None:
    portal = story.portal
    mia = portal.upsert_user(20, name="Mia", last_name="Meyer", departments=[4])
    story.chapter(
        "New hire: Mia Meyer (user 20) logs in for the first time; department Sales DACH (4)"
    )
    body = user_add(mia, token=APP_TOKEN)
    await story.post(body, "ONUSERADD")
    await story.work()

    story.chapter("Bitrix24 delivers the very same event again")
    await story.post(body, "ONUSERADD")
    await story.work()

    story.chapter(
        "New hire: Hiro Hayashi (user 8) of Backend; already in the Backend guild by hand"
    )
    portal.state.chats[105].members.add(8)
    await story.post(user_add(portal.state.users[8], token=APP_TOKEN), "ONUSERADD")
    await story.work()

    story.chapter("Someone posts a forged event")
    await story.post(user_add(mia, token="forged-token"), "ONUSERADD")
