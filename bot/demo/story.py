"""The demo's story: a sandbox company, told through the real service end to end.

Everything runs in this process: the fake portal and autojoin talk over in-memory HTTP, so
no account and no network are needed, yet every event goes through the real endpoint,
queue, worker, REST client, rate limit and audit.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import handlers
from bot.chatbot.registration import Registration, V2Setup, register_v2
from bot.commands.plan import run_plan, run_sync_command
from bot.jobs import AuditEntry
from bot.reconcile.schedule import Reconciler
from bot.reconcile.session import Runtime
from bot.sandbox import FakePortal
from bot.sandbox.company import sample_company
from bot.sandbox.events import APP_TOKEN, user_add
from bot.sandbox.events_wire import MEMBER_ID
from bot.services import Services
from bot.settings import Settings
from bot.wiring import build_services, create_app

DEMO_RULES = Path(__file__).resolve().parent / "demo_rules.yaml"
BOT_TOKEN = "demo-bot-token-0c4f7a9e"  # a Chatbots 2.0 bot in fetch mode: no public URL
CHAPTERS = 8
Out = Callable[[str], None]


def demo_settings(tmp: Path, portal: FakePortal, rules: Path, base: str) -> Settings:
    return Settings.load(
        {
            "B24_WEBHOOK_URL": portal.webhook_url(base),
            "B24_APP_TOKEN": APP_TOKEN,
            "B24_BOT_TOKEN": BOT_TOKEN,
            "B24_MEMBER_ID": MEMBER_ID,  # a polled hire and a pushed ONUSERADD share one key
            "AUTOJOIN_RULES": str(rules),
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp / 'autojoin.db'}",
            "AUTOJOIN_COALESCE_MS": "0",
            "AUTOJOIN_RECONCILE_MINUTES": "0",
        },
        env_file=tmp / "absent.env",
    )


class Story:
    def __init__(self, portal: FakePortal, services: Services, out: Out, tmp: Path) -> None:
        self.portal = portal
        self.services = services
        self.out = out
        self.tmp = tmp
        self.step = 0
        self.bot: Registration | None = None
        app = create_app(services)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://autojoin.demo"
        )

    def chapter(self, title: str) -> None:
        self.step += 1
        self.out(f"\n[{self.step}/{CHAPTERS}] {title}")

    def runtime(self, out: io.StringIO) -> Runtime:
        return Runtime(
            self.services.settings,
            transport=httpx.ASGITransport(app=self.portal.app),
            store=self.services.store,
            out=out,
            err=sys.stderr,  # plan/sync progress: a bar on a terminal, plain lines otherwise
        )

    async def post(self, body: bytes, label: str) -> None:
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

    async def work(self) -> None:
        """Run the worker until the queue is empty; print each membership change and why."""
        before = self.portal.http_requests
        seen = await self._audit_ids()
        worker = self.services.worker
        assert worker is not None
        await worker.run_until_idle()
        new = [e for e in await self.services.store.history(limit=10_000) if _id(e) not in seen]
        self.out(f"    worker: {self.portal.http_requests - before} portal request(s)")
        for entry in sorted(new, key=lambda e: (e.user_id, e.chat_id)):
            self.out("    " + describe(entry, self.portal))
        if not new:
            self.out("    (no membership change)")

    async def _audit_ids(self) -> set[tuple[float, int, int, str]]:
        return {_id(e) for e in await self.services.store.history(limit=10_000)}

    def replies_since(self, count: int) -> None:
        for message in self.portal.messages[count:]:
            text = message.message.replace("\n", "\n        ")
            self.out(f"    bot replies in dialog {message.dialog_id or '(command)'}: {text}")

    async def say(self, user_id: int, text: str) -> None:
        """The person writes to the bot on the portal; autojoin fetches it (no POST at all)."""
        assert self.bot is not None
        stage = self.portal.stage
        if text.startswith("/"):
            name, _, params = text[1:].partition(" ")
            stage.command(self.bot.bot_id, user_id, name, params)
        else:
            stage.message(self.bot.bot_id, user_id, text)
        replies = len(self.portal.messages)
        fetcher = self.services.fetcher
        assert fetcher is not None
        counts = await self.services.store.counts()
        await fetcher.poll_once()
        jobs = sum((await self.services.store.counts()).values()) - sum(counts.values())
        self.out(f"    imbot.v2.Event.get (fetch mode) -> {text!r} accepted ({jobs} job(s))")
        await self.work()
        self.replies_since(replies)

    async def poll_hires(self) -> None:
        """One turn of the hire poll: `user.get` above the highest ID seen (no POST at all)."""
        hires = self.services.hires
        assert hires is not None
        counts = sum((await self.services.store.counts()).values())
        await hires.poll_once()
        jobs = sum((await self.services.store.counts()).values()) - counts
        self.out(f"    user.get >ID (hire poll) -> new hire accepted ({jobs} job(s))")
        await self.work()

    async def command(self, run: Any, **options: Any) -> list[str]:
        out = io.StringIO()
        defaults: dict[str, Any] = {"format": "text", "rules": None, "limit": 6}
        defaults.update({"detailed_exitcode": False, "yes": True, "allow_removals": None})
        await run(argparse.Namespace(**(defaults | options)), self.runtime(out))
        return [line for line in out.getvalue().splitlines() if line.strip()]


def _id(entry: AuditEntry) -> tuple[float, int, int, str]:
    return (entry.at, entry.chat_id, entry.user_id, entry.outcome)


def describe(entry: AuditEntry, portal: FakePortal) -> str:
    chat = portal.state.chats.get(entry.chat_id)
    user = portal.state.users.get(entry.user_id)
    who = f"{user.name} ({entry.user_id})" if user else str(entry.user_id)
    title = f"{chat.title} ({entry.chat_id})" if chat else str(entry.chat_id)
    mark = {"added": "+", "already_member": "=", "dropped": "-", "removed": "-", "dead": "!"}
    history = "history hidden " if entry.hide_history else "history visible"
    if entry.outcome == "removed":
        history = " " * 15
    why = entry.detail or entry.rule or ""
    code = f" [{entry.code}]" if entry.code else ""
    sign = mark.get(entry.outcome, "?")
    return f"{sign} {entry.outcome:<14} {who:<16} {title:<24} {history}  {why}{code}"


async def tell(tmp: Path, out: Out, portal: FakePortal | None = None) -> FakePortal:
    """The whole story; returns the portal so `--keep` can go on serving it."""
    portal = portal or FakePortal(sample_company())
    rules = tmp / "rules.yaml"
    shutil.copy(DEMO_RULES, rules)
    settings = demo_settings(tmp, portal, rules, "http://127.0.0.1:9")
    services = build_services(
        settings, router=handlers.router, transport=httpx.ASGITransport(app=portal.app)
    )
    story = Story(portal, services, out, tmp)
    out("autojoin demo: Example Corp on a fake Bitrix24 portal (no account, no network)")
    out(f"rules: {len(services.rules.current.rules)} rules, copied to {rules}")
    try:
        assert services.hires is not None
        await services.hires.poll_once()  # first start: today's staff are not new hires
        await chapters(story)
    finally:
        await story.client.aclose()
        await services.aclose()
    out(f"\nportal: {portal.http_requests} HTTP request(s) in all, at its real limit of 2/s.")
    return portal


async def chapters(story: Story) -> None:
    portal, out = story.portal, story.out
    story.chapter("Day one: `autojoin plan` shows what the rules would do to today's staff")
    for line in (await story.command(run_plan))[:16]:
        out("    " + line)
    story.chapter("`autojoin sync --yes` applies it through the queue, rate limit and audit")
    lines = await story.command(run_sync_command)
    totals = next((i for i, line in enumerate(lines) if line.startswith("Totals")), -1)
    for line in lines[totals + 1 :]:
        out("    " + line)

    story.chapter("New hire: Mia Meyer (user 20), Sales DACH (4); no public URL needed:")
    out("    autojoin polls user.get for IDs above the highest it has seen")
    mia = portal.upsert_user(20, name="Mia", last_name="Meyer", departments=[4])
    await story.poll_hires()
    story.chapter("She logs in; with an outbound webhook Bitrix24 also POSTs ONUSERADD")
    body = user_add(mia, token=APP_TOKEN)
    await story.post(body, "ONUSERADD (the same hire: one once-only key)")
    await story.post(body, "ONUSERADD (delivered again)")
    await story.work()

    worker = story.services.worker
    assert worker is not None
    setup = V2Setup.from_settings(story.services.settings)
    story.bot = await register_v2(worker.ctx.client, story.services.store, setup, time.time())
    story.chapter("Boris (Sales) types “/join marketing” to the bot (anyone may); no public URL:")
    out("    the Chatbots 2.0 bot is in fetch mode, autojoin pulls its events from the portal")
    await story.say(2, "/join marketing")
    story.chapter("Boris asks for “join backend”, which only Engineering may use")
    await story.say(2, "join backend")

    story.chapter("Dieter moves from Sales DACH to Backend; the scheduled reconcile notices")
    portal.upsert_user(4, departments=[7])
    reconciler = Reconciler(
        story.services.store,
        worker.ctx.client,
        lambda: story.services.rules.current,
        story.services.settings,
        clock=time.time,
        sleep=worker.sleep,
    )
    await reconciler.run_pass(full=True)
    await story.work()

    story.chapter("An admin edits a rule; `autojoin plan --rules edited.yaml` previews it")
    edited = story.tmp / "edited.yaml"
    text = (story.tmp / "rules.yaml").read_text("utf-8")
    edited.write_text(text.replace("departments: [2]\n", "departments: [2, 9]\n", 1), "utf-8")
    out("    edit: rule sales-all-hands now also names Support (9)")
    for line in (await story.command(run_plan, rules=edited))[:12]:
        out("    " + line)
    out("    (nothing applied: run `autojoin sync` after review)")
