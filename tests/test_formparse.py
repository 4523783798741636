from __future__ import annotations

import pytest

from bot.errors import MalformedEvent
from bot.formparse import FormLimits, build_query, parse_form


def test_bracket_keys_nest_and_lists_become_lists() -> None:
    body = (
        b"event=ONUSERADD&data%5BID%5D=245&data%5BUF_DEPARTMENT%5D%5B0%5D=7"
        b"&data%5BUF_DEPARTMENT%5D%5B1%5D=12&auth%5Bmember_id%5D=abc"
    )
    tree = parse_form(body)
    assert tree == {
        "event": "ONUSERADD",
        "data": {"ID": "245", "UF_DEPARTMENT": ["7", "12"]},
        "auth": {"member_id": "abc"},
    }


def test_id_keyed_maps_stay_maps() -> None:
    tree = parse_form(b"data[BOT][567][BOT_ID]=567&data[PARAMS][MENTIONED_LIST][567]=567")
    assert tree["data"]["BOT"] == {"567": {"BOT_ID": "567"}}
    assert tree["data"]["PARAMS"]["MENTIONED_LIST"] == {"567": "567"}


def test_plus_and_percent_decoding_and_empty_values() -> None:
    tree = parse_form(b"a=hello+world&b=%D1%91%D0%B6&c=&d")
    assert tree == {"a": "hello world", "b": "ёж", "c": "", "d": ""}


def test_append_brackets_build_a_list() -> None:
    assert parse_form(b"u[]=1&u[]=2")["u"] == ["1", "2"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"a=1&a[b]=2", "conflicts"),
        (b"a[b]=2&a=1", "conflicts"),
        (b"a=1&a=2", "conflicts"),
        (b"a[b=1", "unclosed"),
        (b"a[b]c=1", "after a bracket"),
        (b"[x]=1", "no base name"),
        (b"a=%ff", "UTF-8"),
        (b"%ff=1", "UTF-8"),
        (b"", "empty"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedEvent, match=fragment):
        parse_form(body)


def test_limits_are_enforced() -> None:
    limits = FormLimits(max_fields=3, max_depth=3, max_key_length=10, max_value_length=5)
    with pytest.raises(MalformedEvent, match="too many fields"):
        parse_form(b"a=1&b=2&c=3&d=4", limits)
    with pytest.raises(MalformedEvent, match="deeper"):
        parse_form(b"a[b][c][d]=1", limits)
    with pytest.raises(MalformedEvent, match="field name longer"):
        parse_form(b"abcdefghijk=1", limits)
    with pytest.raises(MalformedEvent, match="longer than 5"):
        parse_form(b"a=123456", limits)


def test_deep_nesting_does_not_recurse() -> None:
    key = "a" + "[x]" * 5000
    with pytest.raises(MalformedEvent, match="deeper"):
        parse_form(f"{key}=1".encode(), FormLimits(max_key_length=100_000))
    deep_ok = "a" + "[x]" * 900
    tree = parse_form(f"{deep_ok}=1".encode(), FormLimits(max_depth=1000, max_key_length=10_000))
    depth = 0
    node = tree["a"]
    while isinstance(node, dict):
        node = node["x"]
        depth += 1
    assert depth == 900


def test_build_query_round_trips_through_the_parser() -> None:
    params = {
        "CHAT_ID": 2935,
        "USERS": [99, 1271],
        "HIDE_HISTORY": "N",
        "FLAG": True,
        "OFF": False,
        "NONE": None,
        "EMPTY": [],
        "MAP": {"567": {"NAME": "Rules Bot & Co"}},
    }
    query = build_query(params)
    assert "NONE" not in query
    assert "EMPTY" not in query
    assert parse_form(query.encode()) == {
        "CHAT_ID": "2935",
        "USERS": ["99", "1271"],
        "HIDE_HISTORY": "N",
        "FLAG": "1",
        "OFF": "0",
        "MAP": {"567": {"NAME": "Rules Bot & Co"}},
    }
    assert build_query({"USERS": [1]}) == "USERS%5B0%5D=1"
