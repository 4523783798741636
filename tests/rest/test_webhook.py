from __future__ import annotations

import pytest

from bot.errors import SettingsError
from bot.logsafe import SECRETS
from bot.rest import WebhookUrl

CODE = "s3cr3tc0de42xyz"


def test_parses_user_host_and_base() -> None:
    hook = WebhookUrl.parse(f"https://Portal.Example/rest/7/{CODE}/")
    assert hook.user_id == 7
    assert hook.host == "portal.example"
    assert hook.port is None
    assert hook.base == f"https://portal.example/rest/7/{CODE}/"
    assert (
        hook.url_for("im.chat.user.add") == f"https://portal.example/rest/7/{CODE}/im.chat.user.add"
    )


def test_trailing_slash_and_whitespace_are_optional() -> None:
    assert WebhookUrl.parse(f" https://portal.example/rest/1/{CODE} ") == WebhookUrl.parse(
        f"https://portal.example/rest/1/{CODE}/"
    )


def test_repr_and_str_mask_the_code() -> None:
    hook = WebhookUrl.parse(f"https://portal.example:8443/rest/1/{CODE}/")
    assert str(hook) == "https://portal.example:8443/rest/1/***/"
    assert repr(hook) == "WebhookUrl('https://portal.example:8443/rest/1/***/')"
    assert CODE not in f"{hook} {hook!r} {[hook]}"
    assert hook.port == 8443


def test_redact_replaces_the_code() -> None:
    hook = WebhookUrl.parse(f"https://portal.example/rest/1/{CODE}/")
    assert hook.redact(f"failed at /rest/1/{CODE}/x") == "failed at /rest/1/***/x"
    assert hook.redact("nothing here") == "nothing here"


def test_code_is_registered_for_log_masking() -> None:
    WebhookUrl.parse(f"https://portal.example/rest/1/{CODE}/")
    assert CODE not in SECRETS.mask(f"GET /rest/1/{CODE}/user.get")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LOCALHOST:8080"]
)
def test_plain_http_is_allowed_for_loopback(host: str) -> None:
    assert WebhookUrl.parse(f"http://{host}/rest/1/{CODE}/").scheme == "http"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"http://portal.example/rest/1/{CODE}/", "https"),
        (f"http://10.0.0.1/rest/1/{CODE}/", "https"),
        (f"ftp://portal.example/rest/1/{CODE}/", "https://"),
        (f"portal.example/rest/1/{CODE}/", "https://"),
        (f"https:///rest/1/{CODE}/", "host"),
        (f"https://user:pw@portal.example/rest/1/{CODE}/", "password"),
        (f"https://portal.example/rest/1/{CODE}/?x=1", "query"),
        (f"https://portal.example/rest/1/{CODE}/#x", "fragment"),
        (f"https://portal.example:99999/rest/1/{CODE}/", "port"),
        (f"https://portal.example/rest/1/{CODE}/profile.json", "method name"),
        (f"https://portal.example/rest/api/1/{CODE}/", "/rest/<user_id>/<code>/"),
        (f"https://portal.example/rest/0/{CODE}/", "positive"),
        (f"https://portal.example/rest/x/{CODE}/", "/rest/<user_id>/<code>/"),
        ("https://portal.example/rest/1/", "/rest/<user_id>/<code>/"),
        (f"https://portal.example/rest/1/{CODE}%20x/", "letters"),
        ("", "https://"),
    ],
)
def test_bad_urls_name_the_variable_and_never_echo_the_code(url: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        WebhookUrl.parse(url)
    assert info.value.variable == "B24_WEBHOOK_URL"
    assert fragment in str(info.value)
    assert CODE not in str(info.value)
    assert info.value.__cause__ is None


def test_equality_and_hash_follow_the_full_url() -> None:
    a = WebhookUrl.parse(f"https://portal.example/rest/1/{CODE}/")
    b = WebhookUrl.parse(f"https://portal.example/rest/1/{CODE}x/")
    assert a != b
    assert len({a, WebhookUrl.parse(f"https://portal.example/rest/1/{CODE}")}) == 1
    assert a != "https://portal.example/rest/1/***/"
