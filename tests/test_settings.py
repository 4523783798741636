from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import Secret, Settings


def test_defaults_need_no_bitrix_settings() -> None:
    settings = Settings.load({}, env_file=Path("/nonexistent/.env"))
    assert settings.rules_path == Path("rules.yaml")
    assert settings.database_url.reveal() == "sqlite:///autojoin.db"
    assert settings.events_path == "/events"
    with pytest.raises(SettingsError, match="B24_WEBHOOK_URL"):
        settings.require_webhook()
    with pytest.raises(SettingsError, match="B24_APP_TOKEN"):
        settings.require_tokens()


def test_token_list_ignores_empty_items_and_adds_the_bot_client_id() -> None:
    settings = Settings.load(
        {"B24_APP_TOKEN": " a1b2, ,c3d4,", "B24_BOT_CLIENT_ID": "botclient"},
        env_file=Path("/nonexistent"),
    )
    assert [t.reveal() for t in settings.require_tokens()] == ["a1b2", "c3d4", "botclient"]


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text('# comment\nexport AUTOJOIN_RULES="from-file.yaml"\nB24_RATE=5\n')
    settings = Settings.load({"B24_RATE": "3"}, env_file=env)
    assert settings.rules_path == Path("from-file.yaml")
    assert settings.rate == 3.0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"B24_RATE": "fast"}, "B24_RATE"),
        ({"B24_BURST": "0"}, "B24_BURST"),
        ({"AUTOJOIN_EVENTS_PATH": "events"}, "AUTOJOIN_EVENTS_PATH"),
        ({"AUTOJOIN_LOG_FORMAT": "xml"}, "AUTOJOIN_LOG_FORMAT"),
        ({"AUTOJOIN_MAX_BODY": "-1"}, "AUTOJOIN_MAX_BODY"),
        ({"AUTOJOIN_LEASE_SECONDS": "0.5"}, "AUTOJOIN_LEASE_SECONDS"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.load(env, env_file=Path("/nonexistent"))
    assert info.value.variable == variable
    assert str(info.value).startswith(variable)


def test_the_lease_is_short_by_default_and_can_be_set() -> None:
    assert Settings.load({}, env_file=Path("/nonexistent")).lease_seconds == 6.0
    chosen = Settings.load({"AUTOJOIN_LEASE_SECONDS": "120"}, env_file=Path("/nonexistent"))
    assert chosen.lease_seconds == 120.0


def test_secrets_never_show_in_reprs() -> None:
    settings = Settings.load(
        {
            "B24_WEBHOOK_URL": "https://p.example/rest/1/hookcode123/",
            "B24_APP_TOKEN": "tok-secret-1",
            "B24_BOT_CLIENT_ID": "client-secret-2",
            "AUTOJOIN_DATABASE_URL": "postgresql://u:dbpass@h/db",
        },
        env_file=Path("/nonexistent"),
    )
    text = repr(settings) + str(settings)
    for secret in ("hookcode123", "tok-secret-1", "client-secret-2", "dbpass"):
        assert secret not in text
    assert Secret("x1y2") == Secret("x1y2")


def _load(**env: str) -> Settings:
    return Settings.load(env, env_file=Path("/nonexistent"))


def test_bot_token_selects_chatbots_v2_in_fetch_mode_by_default() -> None:
    settings = _load(B24_BOT_TOKEN="t" * 40)
    assert settings.bot_token == Secret("t" * 40)
    assert (settings.bot_event_mode, settings.bot_fetch) == ("fetch", True)
    assert (settings.bot_poll_seconds, settings.hire_poll_seconds) == (5.0, 300.0)
    assert "t" * 40 not in repr(settings)
    assert settings.push_tokens == ()  # fetch mode takes no pushed bot events


def test_a_bot_token_over_40_characters_is_one_clear_line() -> None:
    with pytest.raises(SettingsError) as caught:
        _load(B24_BOT_TOKEN="x" * 41)
    message = str(caught.value)
    assert message.startswith("B24_BOT_TOKEN: 41 characters")
    assert "at most 40" in message
    assert "\n" not in message
    assert "x" * 41 not in message


def test_webhook_mode_needs_a_public_url_and_accepts_the_derived_token() -> None:
    with pytest.raises(SettingsError, match="AUTOJOIN_PUBLIC_URL"):
        _load(B24_BOT_TOKEN="tok", AUTOJOIN_BOT_EVENT_MODE="webhook")
    settings = _load(
        B24_BOT_TOKEN="tok", AUTOJOIN_BOT_EVENT_MODE="webhook", AUTOJOIN_PUBLIC_URL="https://a.b"
    )
    assert not settings.bot_fetch
    assert [t.reveal() for t in settings.require_tokens()] == ["customtok"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTOJOIN_BOT_EVENT_MODE", "push"),
        ("AUTOJOIN_BOT_POLL_SECONDS", "0.5"),
        ("AUTOJOIN_BOT_POLL_SECONDS", "soon"),
        ("AUTOJOIN_HIRE_POLL_SECONDS", "-1"),
        ("AUTOJOIN_HIRE_POLL_SECONDS", "0.2"),
    ],
)
def test_bad_v2_and_poll_settings_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        _load(**{name: value})


def test_hire_poll_can_be_turned_off() -> None:
    assert _load(AUTOJOIN_HIRE_POLL_SECONDS="0").hire_poll_seconds == 0
