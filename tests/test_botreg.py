"""`register-bot` / `unregister-bot` against the fake portal: idempotent, never duplicating."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.chatbot.registration_classic import BotSetup, register_bot, unregister_bot
from bot.chatbot.runtime import BOT_COMMANDS_KEY, BOT_ID_KEY
from bot.cli import main
from bot.errors import SettingsError
from bot.rest import LeakyBucket, PortalClient, WebhookUrl
from bot.sandbox import FakePortal
from bot.settings import Settings
from bot.store import AsyncStore, open_store
from tests.fakes import FakeClock

CLIENT = "botreg-test-client-42"
NO_ENV = Path("/nonexistent/.env")
SETUP = BotSetup("autojoin", "Autojoin", CLIENT, "https://autojoin.example.com/events")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    opened = AsyncStore(open_store(f"sqlite:///{tmp_path / 'bot.db'}"))
    yield opened
    await opened.close()


@pytest.fixture
async def client(portal: FakePortal) -> AsyncIterator[PortalClient]:
    clock = FakeClock()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=portal.app)) as http:
        webhook = WebhookUrl.parse(portal.webhook_url("http://127.0.0.1:9"))
        yield PortalClient(http, webhook, bucket=LeakyBucket(clock=clock, sleep=clock.sleep))


@pytest.fixture
def portal() -> FakePortal:
    return FakePortal(clock=FakeClock())


def counted(portal: FakePortal) -> dict[str, int]:
    methods = {c.method for c in portal.state.calls}
    return {m: len(portal.calls_to(m)) for m in sorted(methods)}


@pytest.mark.anyio
async def test_register_twice_makes_one_bot_and_three_commands(
    portal: FakePortal, client: PortalClient, store: AsyncStore
) -> None:
    first = await register_bot(client, store, SETUP, 1.0)
    second = await register_bot(client, store, SETUP, 2.0)
    assert (first.created, second.created) == (True, False)
    assert first.bot_id == second.bot_id
    assert first.commands == second.commands
    assert (first.new_commands, second.new_commands) == (("join", "help", "why"), ())
    [bot] = portal.state.bots.values()
    assert (bot.id, bot.code, bot.client_id, bot.type) == (first.bot_id, "autojoin", CLIENT, "B")
    assert set(bot.handlers.values()) == {SETUP.handler}
    assert set(bot.handlers) == {"ONIMBOTMESSAGEADD", "ONIMBOTJOINCHAT", "ONIMBOTDELETE"}
    commands = sorted((c.command, c.bot_id) for c in portal.state.commands.values())
    assert commands == [("help", bot.id), ("join", bot.id), ("why", bot.id)]
    join = portal.state.commands[first.commands["join"]]
    assert {e["LANGUAGE_ID"] for e in join.lang} == {"en", "ru"}
    assert join.handler == SETUP.handler
    assert counted(portal) == {
        "imbot.bot.list": 2,
        "imbot.command.register": 3,
        "imbot.command.update": 3,
        "imbot.register": 1,
        "imbot.update": 1,
    }
    assert all(c.params.get("CLIENT_ID") == CLIENT for c in portal.state.calls)
    assert await store.get_state(BOT_ID_KEY) == str(bot.id)
    assert json.loads(await store.get_state(BOT_COMMANDS_KEY) or "") == first.commands


@pytest.mark.anyio
async def test_a_lost_store_or_a_deleted_command_still_duplicates_nothing(
    portal: FakePortal, client: PortalClient, store: AsyncStore
) -> None:
    first = await register_bot(client, store, SETUP, 1.0)
    await store.set_state(BOT_COMMANDS_KEY, None, 2.0)  # the database was replaced
    again = await register_bot(client, store, SETUP, 3.0)
    assert again.commands == first.commands  # the portal returns the existing ids
    del portal.state.commands[first.commands["help"]]  # someone removed /help
    old = json.loads(await store.get_state(BOT_COMMANDS_KEY) or "")
    await store.set_state(BOT_COMMANDS_KEY, json.dumps({**old, "retired": 12345}), 4.0)
    healed = await register_bot(client, store, SETUP, 5.0)
    assert healed.new_commands == ("help",)
    assert healed.commands["help"] != first.commands["help"]
    assert len(portal.state.commands) == 3
    assert [c.params["COMMAND_ID"] for c in portal.calls_to("imbot.command.unregister")] == [12345]


@pytest.mark.anyio
async def test_unregister_removes_the_bot_and_forgets_it(
    portal: FakePortal, client: PortalClient, store: AsyncStore
) -> None:
    done = await register_bot(client, store, SETUP, 1.0)
    assert await unregister_bot(client, store, SETUP, 2.0) == done.bot_id
    assert (portal.state.bots, portal.state.commands) == ({}, {})
    assert await store.get_state(BOT_ID_KEY) is None
    assert await store.get_state(BOT_COMMANDS_KEY) is None
    assert await unregister_bot(client, store, SETUP, 3.0) is None


def test_setup_needs_a_client_id_and_a_public_url() -> None:
    with pytest.raises(SettingsError, match="B24_BOT_CLIENT_ID"):
        BotSetup.from_settings(
            Settings.load({"AUTOJOIN_PUBLIC_URL": "https://a.example"}, env_file=NO_ENV)
        )
    with pytest.raises(SettingsError, match="AUTOJOIN_PUBLIC_URL"):
        BotSetup.from_settings(Settings.load({"B24_BOT_CLIENT_ID": "x"}, env_file=NO_ENV))
    setup = BotSetup.from_settings(
        Settings.load(
            {
                "B24_BOT_CLIENT_ID": "secret-client",
                "AUTOJOIN_PUBLIC_URL": "https://a.example/",
                "AUTOJOIN_EVENTS_PATH": "/b24/events",
                "AUTOJOIN_BOT_CODE": "joiner",
            },
            env_file=NO_ENV,
        )
    )
    assert (setup.code, setup.name, setup.handler) == (
        "joiner",
        "autojoin",
        "https://a.example/b24/events",
    )
    assert "secret-client" not in repr(setup)


def test_the_cli_registers_and_unregisters_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    portal = FakePortal()
    monkeypatch.chdir(tmp_path)
    with portal.serve_in_thread() as base:
        for name, value in {
            "B24_WEBHOOK_URL": portal.webhook_url(base),
            "B24_BOT_CLIENT_ID": CLIENT,
            "AUTOJOIN_PUBLIC_URL": "https://autojoin.example.com",
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "B24_RATE": "50",  # a fresh database assumes a full bucket: do not pace the test
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["register-bot"]) == 0
        assert main(["register-bot"]) == 0
        out = capsys.readouterr().out
        assert (len(portal.state.bots), len(portal.state.commands)) == (1, 3)
        [bot_id] = portal.state.bots
        assert f"registered bot 'autojoin' (id {bot_id})" in out
        assert f"updated bot 'autojoin' (id {bot_id})" in out
        assert "/join (id 1, new)" in out
        assert CLIENT not in out
        assert main(["unregister-bot"]) == 0
        assert portal.state.bots == {}
        assert f"removed bot 'autojoin' (id {bot_id})" in capsys.readouterr().out
        monkeypatch.delenv("B24_BOT_CLIENT_ID")
        assert main(["register-bot"]) == 1
        assert "B24_BOT_CLIENT_ID" in capsys.readouterr().err


def test_bot_settings_defaults_and_refusals() -> None:
    defaults = Settings.load({}, env_file=NO_ENV)
    assert (defaults.bot_code, defaults.bot_name) == ("autojoin", "autojoin")
    assert (defaults.bot_user_limit, defaults.bot_global_limit) == (5, 60)
    tuned = Settings.load(
        {
            "AUTOJOIN_BOT_USER_LIMIT": "2",
            "AUTOJOIN_BOT_GLOBAL_LIMIT": "0",
            "AUTOJOIN_BOT_NAME": " Joe ",
        },
        env_file=NO_ENV,
    )
    assert (tuned.bot_user_limit, tuned.bot_global_limit, tuned.bot_name) == (2, 0, "Joe")
    for env, variable in (
        ({"AUTOJOIN_BOT_CODE": "auto join"}, "AUTOJOIN_BOT_CODE"),
        ({"AUTOJOIN_BOT_CODE": "бот"}, "AUTOJOIN_BOT_CODE"),
        ({"AUTOJOIN_BOT_USER_LIMIT": "-1"}, "AUTOJOIN_BOT_USER_LIMIT"),
        ({"AUTOJOIN_BOT_GLOBAL_LIMIT": "many"}, "AUTOJOIN_BOT_GLOBAL_LIMIT"),
    ):
        with pytest.raises(SettingsError) as info:
            Settings.load(env, env_file=NO_ENV)
        assert info.value.variable == variable


def test_cli_registers_a_chatbots_v2_bot_when_a_token_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    portal = FakePortal()
    monkeypatch.chdir(tmp_path)
    token = "cli-v2-token-0123456789"
    with portal.serve_in_thread() as base:
        for name, value in {
            "B24_WEBHOOK_URL": portal.webhook_url(base),
            "B24_BOT_TOKEN": token,
            "B24_BOT_CLIENT_ID": CLIENT,  # kept for the classic bot: not used to register
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "B24_RATE": "50",
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["register-bot"]) == 0
        assert main(["register-bot"]) == 0
        out = capsys.readouterr().out
        [bot_id] = portal.state.bots
        assert f"registered Chatbots 2.0 bot 'autojoin' (id {bot_id}); events are fetched" in out
        assert f"found (unchanged) Chatbots 2.0 bot 'autojoin' (id {bot_id})" in out
        assert token not in out
        assert [c.method for c in portal.state.calls if not c.method.startswith("imbot.v2.")] == []
        assert main(["unregister-bot"]) == 0
        assert portal.state.bots == {}
        assert f"removed Chatbots 2.0 bot 'autojoin' (id {bot_id})" in capsys.readouterr().out
        monkeypatch.setenv("B24_BOT_TOKEN", "x" * 41)
        assert main(["register-bot"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "B24_BOT_TOKEN: 41 characters" in err
