"""Canary secrets never reach the output: logs at DEBUG (ours, httpx's, uvicorn's), tracebacks,
reprs and the CLI, across success, refusal, dead jobs, a revoked webhook and a crash.

Every secret autojoin holds gets a distinctive canary value; the scenarios then run and
everything this process writes to stdout and stderr is searched for each canary.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest

from bot.cli import main
from bot.events import Verifier, parse_event
from bot.jobs import ADD_TO_CHAT, NewJob
from bot.logsafe import configure_logging
from bot.routing import HandlerContext
from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS, SECRET_PROJECT
from bot.sandbox.events import user_add
from tests.harness import FORM, open_harness
from tests.processes import PG_DSN, ServeProcess, postgres_schema, wait_until

pytestmark = pytest.mark.anyio

WEBHOOK_CODE = "canaryHookCode4f1d9e2b"
APP_TOKEN = "canaryAppToken7c3e5a90"
BOT_CLIENT_ID = "canaryBotClientId0b8d61"
PG_PASSWORD = "canaryPgPassword93ae07"


def with_password(dsn: str, password: str) -> tuple[str, str]:
    """The DSN with a password; the local test server trusts loopback and ignores it. A DSN
    that already has one keeps it, and then that is the canary."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn, parts.password
    host = parts.hostname or "127.0.0.1"
    netloc = f"{parts.username or 'postgres'}:{password}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), password


@dataclass(frozen=True)
class Canaries:
    database_url: str
    pg_password: str

    @property
    def values(self) -> dict[str, str]:
        return {
            "webhook code": WEBHOOK_CODE,
            "B24_APP_TOKEN": APP_TOKEN,
            "B24_BOT_CLIENT_ID": BOT_CLIENT_ID,
            "database password": self.pg_password,
        }

    def env(self, portal_base: str = "http://127.0.0.1:9") -> dict[str, Any]:
        """The settings as open_harness takes them (`Any`: keyword arguments) or a child's."""
        return {
            "B24_WEBHOOK_URL": f"{portal_base}/rest/1/{WEBHOOK_CODE}/",
            "B24_APP_TOKEN": APP_TOKEN,
            "B24_BOT_CLIENT_ID": BOT_CLIENT_ID,
            "AUTOJOIN_DATABASE_URL": self.database_url,
        }

    def assert_absent(self, text: str) -> None:
        assert text.strip(), "nothing was captured: the test would prove nothing"
        leaked = {
            name: [line[:300] for line in text.splitlines() if value in line][:5]
            for name, value in self.values.items()
            if value in text
        }
        assert leaked == {}, "leaked:\n" + "\n".join(f"{k}: {v}" for k, v in leaked.items())


@pytest.fixture
def canaries() -> Iterator[Canaries]:
    dsn, password = with_password(PG_DSN, PG_PASSWORD)
    with postgres_schema(dsn, prefix="autojoin_secrets") as url:
        yield Canaries(url, password)


@contextmanager
def debug_logging() -> Iterator[None]:
    """DEBUG on the root logger through autojoin's own handler, undone afterwards. Entered in
    the test body: the handler binds the `sys.stderr` of that moment, which must be `capfd`'s."""
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG")
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def canary_portal() -> FakePortal:
    portal = FakePortal()
    portal.state.webhooks[0].code = WEBHOOK_CODE
    return portal


def hire_body(portal: FakePortal, user_id: int, token: str = APP_TOKEN) -> bytes:
    user = portal.upsert_user(user_id, name="Mia", last_name="Meyer", departments=[4])
    return user_add(user, token=token)


async def test_no_canary_in_logs_tracebacks_or_reprs_across_the_scenarios(
    tmp_path: Path,
    canaries: Canaries,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A hire, a forged event, a dead job, a revoked webhook and a crashing executor, with
    every log line at DEBUG and the reprs of everything that holds a secret."""
    portal = canary_portal()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ndefaults: {hide_history: false}\nrules:\n"
        f"  - name: sales\n    departments: [4]\n    chats: [{SALES_ALL_HANDS}, {SECRET_PROJECT}]\n"
    )
    env = canaries.env() | {"B24_WEBHOOK_URL": portal.webhook_url("http://127.0.0.1:9")}
    with debug_logging():
        await run_scenarios(tmp_path, portal, env)
    out = capfd.readouterr()
    captured = out.out + out.err
    assert "Traceback" in captured, "the crashing executor logged its traceback"
    assert "queue paused" in captured
    assert "HTTP Request" in captured, "httpx's request lines were captured"
    canaries.assert_absent(captured)


async def run_scenarios(tmp_path: Path, portal: FakePortal, env: dict[str, Any]) -> None:
    async with open_harness(tmp_path, portal=portal, **env) as h:
        logging.getLogger("autojoin.test").debug("scenarios start")
        # a hire whose two adds go dead: 101 by an injected error whose text quotes the full
        # webhook URL back at us, 107 because the webhook user is not a member
        h.portal.fail_next(
            "im.chat.user.add",
            "ACCESS_DENIED_EXTEND",
            description=f"no access for {h.portal.webhook_url('https://x.bitrix24.com')}",
        )
        assert (await h.post(hire_body(h.portal, 30))).status_code == 200
        await h.drain()
        dead = await h.services.store.jobs(("dead",))
        assert [j.last_code for j in dead] == ["ACCESS_DENIED_EXTEND"] * 2
        # a forged event, and one carrying the bot's CLIENT_ID in the app token's place
        assert (
            await h.post(hire_body(h.portal, 31, token="forged-" + APP_TOKEN))
        ).status_code == 401
        as_bot = await h.client.post(
            f"/events?CLIENT_ID={BOT_CLIENT_ID}",
            content=hire_body(h.portal, 32, token=BOT_CLIENT_ID),
            headers={"content-type": FORM},
        )
        assert as_bot.status_code == 200
        # a crashing executor logs a traceback whose message holds a canary
        poison = NewJob(ADD_TO_CHAT, {"chat_id": APP_TOKEN, "user_id": 5, "hide_history": 0})
        await h.services.store.enqueue([poison], h.clock())
        # a revoked webhook: the portal-wide failure pauses the queue
        h.portal.revoke_webhook()
        worker = h.services.worker
        assert worker is not None
        await worker.run_until_idle()
        health = (await h.client.get("/healthz")).json()
        assert health["status"] == "degraded"
        pause = await worker.pause_state()
        assert pause is not None
        h.clock.advance(pause.next_probe - h.clock())
        await worker.run_until_idle()  # a failed probe
        h.portal.restore_webhook()
        h.clock.advance(600.0)
        await worker.run_until_idle()
        crashed = await h.services.store.jobs(("pending",))
        assert [j.last_code for j in crashed] == ["INTERNAL_ERROR"]
        assert h.portal.webhook_url().endswith(f"/{WEBHOOK_CODE}/")  # the canary is in use
        # every object that holds a secret, printed
        event = parse_event(hire_body(h.portal, 33), Verifier((APP_TOKEN,)), now=h.clock())
        objects = [
            h.services.settings,
            h.services.settings.webhook_url,
            h.services.settings.database_url,
            h.services.settings.app_tokens,
            h.services,
            h.services.verifier,
            h.services.settings.require_webhook(),
            worker.ctx.client,
            worker.ctx,
            worker,
            h.services.store,
            h.services.store.store,
            event,
            HandlerContext(rules=h.services.rules.current, bot_client_id=BOT_CLIENT_ID),
        ]
        for thing in objects:
            sys.stdout.write(f"{thing!r}\n{thing!s}\n")
        logging.getLogger("autojoin.test").info("services: %r", h.services)


def cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    out = capfd.readouterr()
    return code, out.out + out.err


def test_no_canary_in_what_the_cli_prints(
    tmp_path: Path,
    canaries: Canaries,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`check`, `jobs`, `history`, `departments` and the failures of `serve` and `jobs`."""
    portal = canary_portal()
    env = canaries.env()

    async def prepare() -> None:
        async with open_harness(tmp_path, portal=portal, **env) as h:
            h.portal.fail_next(
                "im.chat.user.add",
                "ACCESS_DENIED_EXTEND",
                description=f"see {h.portal.webhook_url()}",
            )
            await h.post(hire_body(h.portal, 40))
            await h.drain()

    with debug_logging():
        anyio.run(prepare)
        outputs = [cli_session(tmp_path, canaries, env, portal, capfd, monkeypatch)]
    out = capfd.readouterr()
    canaries.assert_absent("\n".join([*outputs, out.out, out.err]))


def cli_session(
    tmp_path: Path,
    canaries: Canaries,
    env: dict[str, Any],
    portal: FakePortal,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    capfd.readouterr()
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUTOJOIN_RULES", str(tmp_path / "rules.yaml"))
    outputs: list[str] = []
    for argv in (["check"], ["jobs", "--all"], ["history"], ["history", "--user", "40"]):
        code, text = cli(argv, capfd)
        assert code == 0, text
        outputs.append(text)
    assert "ACCESS_DENIED_EXTEND" in outputs[1]
    assert "added" in outputs[2]

    with portal.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", f"{base}/rest/1/{WEBHOOK_CODE}/")
        code, text = cli(["departments"], capfd)
        assert code == 0, text
        assert "Sales DACH" in text
        outputs.append(text)
        monkeypatch.setenv("B24_WEBHOOK_URL", f"{base}/rest/1/{WEBHOOK_CODE}x/")
        code, text = cli(["departments"], capfd)
        assert code != 0
        outputs.append(text)

    monkeypatch.setenv("B24_WEBHOOK_URL", f"http://portal.example.com/rest/1/{WEBHOOK_CODE}/")
    code, text = cli(["serve", "--port", "1"], capfd)
    assert code == 1
    assert "B24_WEBHOOK_URL" in text
    outputs.append(text)

    unreachable = urlsplit(canaries.database_url)._replace(
        netloc=f"postgres:{canaries.pg_password}@127.0.0.1:1"
    )
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", urlunsplit(unreachable))
    code, text = cli(["jobs"], capfd)
    assert code == 1
    assert "127.0.0.1" in text
    outputs.append(text)
    return "\n".join(outputs)


@pytest.mark.slow
def test_no_canary_in_the_output_of_a_serve_process(tmp_path: Path, canaries: Canaries) -> None:
    """The real `autojoin serve` at DEBUG, on real sockets: uvicorn's and httpx's lines,
    a hire, a forged event and a revoked webhook, then SIGTERM."""
    portal = canary_portal()
    (tmp_path / "rules.yaml").write_text(
        "version: 1\ndefaults: {hide_history: false}\nrules:\n"
        f"  - name: sales\n    departments: [4]\n    chats: [{SALES_ALL_HANDS}]\n"
    )
    with portal.serve_in_thread() as base:
        env = canaries.env(base) | {
            "AUTOJOIN_RULES": str(tmp_path / "rules.yaml"),
            "AUTOJOIN_LOG_LEVEL": "DEBUG",
            "AUTOJOIN_COALESCE_MS": "0",
        }
        with ServeProcess(env=env, cwd=tmp_path, log=tmp_path / "serve.log") as service:
            hired = service.post(f"/events?CLIENT_ID={BOT_CLIENT_ID}", hire_body(portal, 50), FORM)
            assert hired.status_code == 200
            wait_until(
                lambda: 50 in portal.chat_members(SALES_ALL_HANDS),
                timeout=30,
                what="the hire to be added",
            )
            forged = service.post("/events", hire_body(portal, 51, token="x" + APP_TOKEN), FORM)
            assert forged.status_code == 401
            portal.revoke_webhook()
            assert service.post("/events", hire_body(portal, 52), FORM).status_code == 200

            def degraded() -> bool:
                response = service.health()
                return response is not None and response.json()["status"] == "degraded"

            wait_until(degraded, timeout=30, what="the queue to pause")
            service.terminate()
        output = service.output()
    for expected in ("uvicorn", "httpx", "DEBUG", "queue paused"):
        assert expected in output
    canaries.assert_absent(output)
