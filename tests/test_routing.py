"""Routers: event name → one pure handler, merged across features without collisions."""

from __future__ import annotations

import pytest

import handlers
from bot.events import Event
from bot.routing import Dispatch, HandlerContext, Router
from bot.rules import parse_rules

CTX = HandlerContext(rules=parse_rules("version: 1\nrules: []\n"), bot_client_id="secret-id")


def first(event: Event, ctx: HandlerContext) -> Dispatch:
    return Dispatch("first")


def second(event: Event, ctx: HandlerContext) -> Dispatch:
    return Dispatch("second")


def test_names_are_case_insensitive() -> None:
    router = Router()
    router.add("onUserAdd", first)
    assert router.handler_for("ONUSERADD") is first
    assert router.handler_for("onuseradd") is first
    assert router.events == frozenset({"ONUSERADD"})


def test_register_adds_one_handler_under_several_names() -> None:
    router = Router()
    decorated = router.register("ONIMBOTMESSAGEADD", "ONIMBOTJOINCHAT")(first)
    assert decorated is first
    assert router.events == frozenset({"ONIMBOTMESSAGEADD", "ONIMBOTJOINCHAT"})


def test_an_unknown_event_has_no_handler() -> None:
    router = Router()
    router.add("ONUSERADD", first)
    assert router.handler_for("ONUSERUPDATE") is None
    assert router.handler_for("") is None


def test_a_second_handler_for_one_event_is_refused() -> None:
    router = Router()
    router.add("ONUSERADD", first)
    with pytest.raises(ValueError, match="ONUSERADD already has a handler"):
        router.add("onuseradd", second)
    assert router.handler_for("ONUSERADD") is first


def test_merging_routers_keeps_every_handler_and_refuses_collisions() -> None:
    users, bots = Router(), Router()
    users.add("ONUSERADD", first)
    bots.add("ONIMBOTMESSAGEADD", second)
    merged = Router(users, bots)
    assert merged.handler_for("ONUSERADD") is first
    assert merged.handler_for("ONIMBOTMESSAGEADD") is second
    clash = Router()
    clash.add("ONUSERADD", second)
    with pytest.raises(ValueError, match="ONUSERADD"):
        Router(users, clash)


def test_the_service_router_serves_every_feature() -> None:
    assert {"ONUSERADD", "ONIMBOTMESSAGEADD"} <= handlers.router.events


def test_the_handler_context_never_shows_the_bot_client_id() -> None:
    assert "secret-id" not in repr(CTX)
    assert Dispatch("k") == Dispatch("k", (), "")
