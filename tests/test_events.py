from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bot.errors import BadToken, ForeignPortal, MalformedEvent, StaleEvent
from bot.events import Verifier, parse_event
from bot.formparse import build_query
from bot.sandbox.events import APP_TOKEN, DOMAIN, MEMBER_ID, auth_block, event_body

TOKEN = APP_TOKEN
MEMBER = MEMBER_ID
DATA = {"ID": "245", "ACTIVE": "1", "UF_DEPARTMENT": ["7", "12"]}


def body(
    event: str = "ONUSERADD",
    data: Mapping[str, Any] = DATA,
    ts: int = 1772432045,
    auth: Mapping[str, Any] | None = None,
) -> bytes:
    """A well-formed body from the sandbox's builder (the one every test uses)."""
    return event_body(event, data, auth or auth_block(TOKEN), ts=ts, handler_id=31)


def malformed(**overrides: object) -> bytes:
    """A body with a shape no portal sends, built by hand on purpose."""
    fields: dict[str, object] = {
        "event": "ONUSERADD",
        "data": DATA,
        "ts": "1772432045",
        "auth": {"application_token": TOKEN},
    }
    return build_query(fields | overrides).encode()


def test_a_verified_event_has_typed_accessors() -> None:
    event = parse_event(body(), Verifier((TOKEN,)))
    assert event.name == "ONUSERADD"
    assert event.require_int("ID") == 245
    assert event.get_ints("UF_DEPARTMENT") == [7, 12]
    assert event.get_flag("ACTIVE") is True
    assert event.member_id == MEMBER
    assert event.ts == 1772432045
    assert event.handler_id == "31"


def test_event_name_is_normalised_to_upper_case() -> None:
    assert parse_event(body(event="onUserAdd"), Verifier((TOKEN,))).name == "ONUSERADD"


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x", None])
def test_missing_empty_or_wrong_token_is_refused(token: str | None) -> None:
    auth = {"member_id": MEMBER, "application_token": token}
    with pytest.raises(BadToken):
        parse_event(body(auth=auth), Verifier((TOKEN,)))


def test_any_of_several_tokens_is_accepted() -> None:
    assert parse_event(body(), Verifier(("other", TOKEN))).name == "ONUSERADD"


def test_token_is_checked_before_the_shape() -> None:
    with pytest.raises(BadToken):
        parse_event(malformed(event=None, auth={"application_token": "bad"}), Verifier((TOKEN,)))


def test_foreign_portal_is_refused_when_configured() -> None:
    with pytest.raises(ForeignPortal):
        parse_event(body(), Verifier((TOKEN,), member_id="someone-else"))
    with pytest.raises(ForeignPortal):
        parse_event(body(), Verifier((TOKEN,), domain="evil.bitrix24.com"))
    event = parse_event(body(), Verifier((TOKEN,), member_id=MEMBER, domain=DOMAIN))
    assert event.domain == DOMAIN


@pytest.mark.parametrize(
    "overrides",
    [
        {"event": None},
        {"event": "ONUSER ADD"},
        {"event": {"x": "1"}},
        {"data": "scalar"},
        {"ts": "yesterday"},
    ],
)
def test_bad_shapes_are_malformed(overrides: dict[str, object]) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(malformed(**overrides), Verifier((TOKEN,)))


def test_freshness_window_is_off_by_default_and_enforced_when_set() -> None:
    parse_event(body(ts=1), Verifier((TOKEN,)), now=2_000_000_000)
    verifier = Verifier((TOKEN,), max_age=300)
    with pytest.raises(StaleEvent):
        parse_event(body(ts=1772432045), verifier, now=1772432045 + 301)
    assert parse_event(body(ts=1772432045), verifier, now=1772432045 + 299).ts == 1772432045


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"ID": "abc"}, ("ID",), "positive integer"),
        ({"ID": "-5"}, ("ID",), "positive integer"),
        ({"ID": "0"}, ("ID",), "positive integer"),
        ({"ID": "١٢"}, ("ID",), "positive integer"),
        ({"ID": {"a": "1"}}, ("ID",), "plain value"),
        ({}, ("ID",), "missing"),
    ],
)
def test_require_int_explains_what_is_wrong(
    data: dict[str, object], path: tuple[str, ...], message: str
) -> None:
    event = parse_event(body(data=data or {"X": "1"}), Verifier((TOKEN,)))
    with pytest.raises(MalformedEvent, match=message):
        event.require_int(*path)


def test_lists_may_arrive_as_maps_or_scalars() -> None:
    event = parse_event(body(data={"A": {"5": "5", "9": "9"}, "B": "3"}), Verifier((TOKEN,)))
    assert event.get_ints("A") == [5, 9]
    assert event.get_ints("B") == [3]
    assert event.get_ints("MISSING") == []


def test_repr_of_verifier_hides_tokens() -> None:
    assert TOKEN not in repr(Verifier((TOKEN,)))


def test_tokens_inside_data_are_dropped_and_repr_is_short() -> None:
    data = {
        "BOT": {
            "567": {
                "access_token": "SECRET1",
                "AUTH": {"refresh_token": "SECRET2"},
                "BOT_ID": "567",
            }
        },
        "PARAMS": {"MESSAGE": "hi"},
    }
    event = parse_event(body(event="ONIMBOTMESSAGEADD", data=data), Verifier((TOKEN,)))
    assert event.get_map("BOT", "567") == {"BOT_ID": "567"}
    assert "SECRET" not in repr(event)
    assert "SECRET" not in str(event.data)
