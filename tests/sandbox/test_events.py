"""Event bodies: the reference captures parse, and the builders reproduce them byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from bot.formparse import parse_form
from bot.sandbox import events
from bot.sandbox.company import sample_company
from bot.sandbox.events import REFERENCE_BODIES

EXPECTED_KEYS = {
    "ONUSERADD/app",
    "ONUSERADD/webhook",
    "ONAPPINSTALL",
    "ONAPPUNINSTALL",
    "ONIMBOTMESSAGEADD",
    "ONIMCOMMANDADD",
    "ONIMBOTJOINCHAT",
    "ONIMBOTDELETE",
}


def parsed(name: str) -> dict[str, Any]:
    return parse_form(REFERENCE_BODIES[name])


@pytest.mark.parametrize("name", sorted(EXPECTED_KEYS))
def test_every_reference_body_parses(name: str) -> None:
    body = REFERENCE_BODIES[name]
    assert b"[" not in body  # brackets are percent-encoded on the wire
    tree = parse_form(body)
    assert tree["event"] == name.split("/")[0]
    assert tree["auth"]["member_id"] == events.MEMBER_ID
    assert tree["auth"]["application_token"] == events.APP_TOKEN
    assert "…" not in body.decode()


def test_reference_set_is_complete_and_shapes_match_the_reference() -> None:
    assert set(REFERENCE_BODIES) == EXPECTED_KEYS
    user = parsed("ONUSERADD/app")["data"]
    assert user["UF_DEPARTMENT"] == ["7", "12"]
    assert user["ACTIVE"] == "1"
    hook_auth = parsed("ONUSERADD/webhook")["auth"]
    assert set(hook_auth) == {
        "domain",
        "client_endpoint",
        "server_endpoint",
        "member_id",
        "application_token",
    }
    message = parsed("ONIMBOTMESSAGEADD")["data"]
    assert message["BOT"]["567"]["AUTH"]["user_id"] == "567"
    assert message["PARAMS"]["MENTIONED_LIST"] == {"567": "567"}
    assert parsed("ONIMCOMMANDADD")["data"]["COMMAND"]["99"]["COMMAND_PARAMS"] == "devops"
    assert parsed("ONIMBOTJOINCHAT")["data"]["USER"]["NAME"] == "Svetlana Ivanova"
    assert parsed("ONIMBOTDELETE")["data"] == {"BOT_ID": "567", "BOT_CODE": "rules_bot"}


ANNA = {
    "ID": 245,
    "ACTIVE": True,
    "NAME": "Anna",
    "LAST_NAME": "Berg",
    "EMAIL": "anna.berg@example.com",
    "PERSONAL_GENDER": "F",
    "DATE_REGISTER": "2026-03-02T00:00:00+03:00",
    "WORK_POSITION": "QA engineer",
    "UF_DEPARTMENT": [7, 12],
}


def test_user_add_builder_reproduces_both_reference_variants() -> None:
    token = "2d5c9a690000071b00000f4400000f5d0000070c1f2e3d4c5b6a79"
    app = events.user_add(
        ANNA, token=events.APP_TOKEN, ts=1772432045, variant="app", access_token=token
    )
    hook = events.user_add(ANNA, token=events.APP_TOKEN, ts=1772432045)
    assert app == REFERENCE_BODIES["ONUSERADD/app"]
    assert hook == REFERENCE_BODIES["ONUSERADD/webhook"]


def test_app_and_bot_delete_builders_reproduce_the_reference() -> None:
    install = events.app_install(
        token=events.APP_TOKEN,
        ts=1772432000,
        access_token="7a3e0b690000071b00000001000000010000070c2b3c4d5e6f7a8b",
        refresh_token="4s386p3q0tr8dy89xvmt96234v3dljg8",
    )
    uninstall = events.app_uninstall(token=events.APP_TOKEN, ts=1772999999)
    assert install == REFERENCE_BODIES["ONAPPINSTALL"]
    assert uninstall == REFERENCE_BODIES["ONAPPUNINSTALL"]
    delete = parse_form(
        events.bot_delete(
            bot_id=567, bot_code="rules_bot", token=events.APP_TOKEN, ts=1772090363, handler_id=439
        )
    )
    reference = parsed("ONIMBOTDELETE")
    assert delete["data"] == reference["data"]
    assert (delete["event_handler_id"], delete["ts"]) == ("439", "1772090363")


def test_group_mention_matches_the_reference_structure() -> None:
    body = events.bot_message(
        bot_id=567,
        bot_code="rules_bot",
        text=", please add me to devops",
        author={
            "ID": 27,
            "NAME": "Svetlana Ivanova",
            "FIRST_NAME": "Svetlana",
            "LAST_NAME": "Ivanova",
            "WORK_POSITION": "",
            "GENDER": "F",
            "IS_BOT": "N",
            "IS_CONNECTOR": "N",
            "IS_NETWORK": "N",
            "IS_EXTRANET": "N",
        },
        token=events.APP_TOKEN,
        message_id=84351,
        chat_id=1157,
        chat_title="Onboarding",
        variant="app",
        ts=1771940028,
    )
    built, reference = parse_form(body), parsed("ONIMBOTMESSAGEADD")
    assert built["data"]["PARAMS"] == reference["data"]["PARAMS"]
    assert built["data"]["USER"] == reference["data"]["USER"]
    assert list(built["data"]["BOT"]["567"]) == list(reference["data"]["BOT"]["567"])
    assert list(built["auth"]) == list(reference["auth"])


def test_private_message_from_a_webhook_bot() -> None:
    author = sample_company().users[8]
    tree = parse_form(
        events.bot_message(
            bot_id=1_000_001,
            bot_code="rules_bot",
            text="join backend",
            author=author,
            token="my-client-id",
            message_id=5,
            ts=1,
        )
    )
    assert tree["data"]["BOT"] == {"1000001": {"BOT_ID": "1000001", "BOT_CODE": "rules_bot"}}
    params = tree["data"]["PARAMS"]
    assert (params["DIALOG_ID"], params["CHAT_TYPE"], params["TO_USER_ID"]) == ("8", "P", "1000001")
    assert "MESSAGE_ORIGINAL" not in params
    assert tree["data"]["USER"]["NAME"] == "Hiro Hayashi"
    assert tree["auth"]["application_token"] == "my-client-id"
    assert "access_token" not in tree["auth"]


def test_command_builder_matches_the_reference_params() -> None:
    body = events.bot_command(
        bot_id=567,
        bot_code="rules_bot",
        command="join",
        command_id=99,
        command_params="devops",
        message_id=33871,
        private_chat_id=2737,
        author={
            "ID": 1269,
            "NAME": "John Smith",
            "FIRST_NAME": "John",
            "LAST_NAME": "Smith",
            "GENDER": "M",
        },
        token=events.APP_TOKEN,
        variant="app",
        ts=1772097199,
    )
    built, reference = parse_form(body), parsed("ONIMCOMMANDADD")
    assert built["data"]["PARAMS"] == reference["data"]["PARAMS"]
    assert built["data"]["USER"] == reference["data"]["USER"]
    item, expected = built["data"]["COMMAND"]["99"], reference["data"]["COMMAND"]["99"]
    assert {k: item[k] for k in expected if k.isupper()} == {
        k: v for k, v in expected.items() if k.isupper()
    }


def test_join_chat_builder_matches_the_reference_params() -> None:
    body = events.bot_join_chat(
        bot_id=567,
        bot_code="rules_bot",
        chat_id=1157,
        token=events.APP_TOKEN,
        user={
            "ID": 27,
            "NAME": "Svetlana Ivanova",
            "FIRST_NAME": "Svetlana",
            "LAST_NAME": "Ivanova",
            "GENDER": "F",
        },
        ts=1772094525,
    )
    built, reference = parse_form(body), parsed("ONIMBOTJOINCHAT")
    assert built["data"]["PARAMS"] == reference["data"]["PARAMS"]
    assert built["data"]["USER"] == reference["data"]["USER"]
    assert "refresh_token" not in built["auth"]


def test_user_add_from_a_sandbox_user_omits_empty_departments() -> None:
    company = sample_company()
    extranet = parse_form(events.user_add(company.users[12], token="t", ts=1))
    dismissed = parse_form(events.user_add(company.users[11], token="t", ts=1))
    assert "UF_DEPARTMENT" not in extranet["data"]
    assert dismissed["data"]["ACTIVE"] == "0"
    assert dismissed["data"]["UF_DEPARTMENT"] == ["7"]


def test_event_body_and_auth_block_shapes() -> None:
    auth = events.auth_block("tok", variant="app", user_id=5, ts=100, member_id="m", domain="d.io")
    assert auth["client_endpoint"] == "https://d.io/rest/"
    assert auth["expires"] == 3700
    body = events.event_body(
        "ONUSERADD", {"ID": 5, "X": [], "Y": None, "Z": False}, auth, ts=100, handler_id=3
    )
    tree = parse_form(body)
    assert tree["data"] == {"ID": "5", "Z": "0"}
    assert "refresh_token" not in tree["auth"]
    assert tree["auth"]["user_id"] == "5"
