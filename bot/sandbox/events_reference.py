"""The example event bodies of the platform reference (§2.1, §2.3–§2.8), in wire form.

Written out pair by pair as the reference lists them, then percent-encoded the way the
portal sends them. Values the reference elides with `…` are filled with plausible hex.
They are independent of the builders in `events.py`, so tests can hold one against the other.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

Pairs = list[tuple[str, str]]

_DOMAIN: Final = "example.bitrix24.com"
_MEMBER: Final = "a223c6b3710f85df22e9377d6c4f7553"
_APP_TOKEN: Final = "51856fefc120afa4b628cc82d3935cce"
_SERVER: Final = "https://oauth.bitrix.info/rest/"
_CLIENT: Final = f"https://{_DOMAIN}/rest/"
_CLIENT_ID: Final = "local.65f0c1a2b3c4d5.12345678"


def wire(pairs: Pairs) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()


def _oauth(
    prefix: str,
    *,
    token: str,
    expires: str,
    user_id: str,
    refresh: str | None,
    scope: str = "user,im,imbot,department",
) -> Pairs:
    pairs = [
        (f"{prefix}[access_token]", token),
        (f"{prefix}[expires]", expires),
        (f"{prefix}[expires_in]", "3600"),
        (f"{prefix}[scope]", scope),
        (f"{prefix}[domain]", _DOMAIN),
        (f"{prefix}[server_endpoint]", _SERVER),
        (f"{prefix}[status]", "L"),
        (f"{prefix}[client_endpoint]", _CLIENT),
        (f"{prefix}[member_id]", _MEMBER),
        (f"{prefix}[user_id]", user_id),
    ]
    if refresh is not None:
        pairs.append((f"{prefix}[refresh_token]", refresh))
    pairs.append((f"{prefix}[application_token]", _APP_TOKEN))
    return pairs


def _hook_auth(order: tuple[str, ...] = ("domain", "client_endpoint", "server_endpoint")) -> Pairs:
    values = {"domain": _DOMAIN, "client_endpoint": _CLIENT, "server_endpoint": _SERVER}
    return [
        *((f"auth[{k}]", values[k]) for k in order),
        ("auth[member_id]", _MEMBER),
        ("auth[application_token]", _APP_TOKEN),
    ]


_USER_ADD_DATA: Final[Pairs] = [
    ("data[ID]", "245"),
    ("data[ACTIVE]", "1"),
    ("data[NAME]", "Anna"),
    ("data[LAST_NAME]", "Berg"),
    ("data[EMAIL]", "anna.berg@example.com"),
    ("data[PERSONAL_GENDER]", "F"),
    ("data[DATE_REGISTER]", "2026-03-02T00:00:00+03:00"),
    ("data[WORK_POSITION]", "QA engineer"),
    ("data[UF_DEPARTMENT][0]", "7"),
    ("data[UF_DEPARTMENT][1]", "12"),
]
_USER_ADD_HEAD: Final[Pairs] = [("event", "ONUSERADD"), ("event_handler_id", "31")]

_BOT_TOKEN: Final = "ccb69d690000071b00000237000002370000070c8e1f2a3b4c5d6e"
_BOT_REFRESH: Final = "bc35c5690000071b00000237000002370000070c9a8b7c6d5e4f3a"


def _bot_item(prefix: str) -> Pairs:
    return [
        (f"{prefix}[access_token]", _BOT_TOKEN),
        (f"{prefix}[expires]", "1771943628"),
        (f"{prefix}[expires_in]", "3600"),
        (f"{prefix}[scope]", "imbot"),
        (f"{prefix}[domain]", _DOMAIN),
        (f"{prefix}[server_endpoint]", _SERVER),
        (f"{prefix}[status]", "L"),
        (f"{prefix}[client_endpoint]", _CLIENT),
        (f"{prefix}[member_id]", _MEMBER),
        (f"{prefix}[refresh_token]", _BOT_REFRESH),
        (f"{prefix}[user_id]", "567"),
        (f"{prefix}[client_id]", _CLIENT_ID),
        (f"{prefix}[application_token]", _APP_TOKEN),
    ]


_MESSAGE_ADD: Final[Pairs] = [
    ("event", "ONIMBOTMESSAGEADD"),
    ("event_handler_id", "403"),
    *_bot_item("data[BOT][567]"),
    *_bot_item("data[BOT][567][AUTH]"),
    ("data[BOT][567][BOT_ID]", "567"),
    ("data[BOT][567][BOT_CODE]", "rules_bot"),
    ("data[PARAMS][MESSAGE]", ", please add me to devops"),
    ("data[PARAMS][MESSAGE_ORIGINAL]", "[USER=567]Rules Bot[/USER], please add me to devops"),
    ("data[PARAMS][MESSAGE_TYPE]", "C"),
    ("data[PARAMS][CHAT_TYPE]", "C"),
    ("data[PARAMS][FROM_USER_ID]", "27"),
    ("data[PARAMS][AUTHOR_ID]", "27"),
    ("data[PARAMS][DIALOG_ID]", "chat1157"),
    ("data[PARAMS][TO_CHAT_ID]", "1157"),
    ("data[PARAMS][CHAT_ID]", "1157"),
    ("data[PARAMS][CHAT_TITLE]", "Onboarding"),
    ("data[PARAMS][CHAT_ENTITY_TYPE]", ""),
    ("data[PARAMS][TO_USER_ID]", "567"),
    ("data[PARAMS][MENTIONED_LIST][567]", "567"),
    ("data[PARAMS][SYSTEM]", "N"),
    ("data[PARAMS][MESSAGE_ID]", "84351"),
    ("data[PARAMS][LANGUAGE]", "en"),
    ("data[USER][ID]", "27"),
    ("data[USER][NAME]", "Svetlana Ivanova"),
    ("data[USER][FIRST_NAME]", "Svetlana"),
    ("data[USER][LAST_NAME]", "Ivanova"),
    ("data[USER][WORK_POSITION]", ""),
    ("data[USER][GENDER]", "F"),
    ("data[USER][IS_BOT]", "N"),
    ("data[USER][IS_CONNECTOR]", "N"),
    ("data[USER][IS_NETWORK]", "N"),
    ("data[USER][IS_EXTRANET]", "N"),
    ("ts", "1771940028"),
    *_oauth(
        "auth",
        token="ccb69d690000071b0000001b0000001b0000070c0a1b2c3d4e5f60",
        expires="1771943628",
        user_id="27",
        refresh="bc35c5690000071b0000001b0000001b0000070c6f5e4d3c2b1a09",
        scope="imbot",
    ),
]

_COMMAND_ADD: Final[Pairs] = [
    ("event", "ONIMCOMMANDADD"),
    ("event_handler_id", "1045"),
    ("data[COMMAND][99][access_token]", "d2a7e4690000071b00000237000002370000070c11223344556677"),
    ("data[COMMAND][99][refresh_token]", "c2f9a8690000071b00000237000002370000070c77665544332211"),
    ("data[COMMAND][99][user_id]", "567"),
    ("data[COMMAND][99][client_id]", _CLIENT_ID),
    ("data[COMMAND][99][application_token]", _APP_TOKEN),
    ("data[COMMAND][99][BOT_ID]", "567"),
    ("data[COMMAND][99][BOT_CODE]", "rules_bot"),
    ("data[COMMAND][99][COMMAND]", "join"),
    ("data[COMMAND][99][COMMAND_ID]", "99"),
    ("data[COMMAND][99][COMMAND_PARAMS]", "devops"),
    ("data[COMMAND][99][COMMAND_CONTEXT]", "TEXTAREA"),
    ("data[COMMAND][99][MESSAGE_ID]", "33871"),
    ("data[PARAMS][MESSAGE]", "/join devops"),
    ("data[PARAMS][MESSAGE_TYPE]", "P"),
    ("data[PARAMS][CHAT_TYPE]", "P"),
    ("data[PARAMS][FROM_USER_ID]", "1269"),
    ("data[PARAMS][AUTHOR_ID]", "1269"),
    ("data[PARAMS][DIALOG_ID]", "1269"),
    ("data[PARAMS][TO_CHAT_ID]", "2737"),
    ("data[PARAMS][TO_USER_ID]", "567"),
    ("data[PARAMS][SYSTEM]", "N"),
    ("data[PARAMS][MESSAGE_ID]", "33871"),
    ("data[PARAMS][LANGUAGE]", "en"),
    ("data[USER][ID]", "1269"),
    ("data[USER][NAME]", "John Smith"),
    ("data[USER][FIRST_NAME]", "John"),
    ("data[USER][LAST_NAME]", "Smith"),
    ("data[USER][GENDER]", "M"),
    ("ts", "1772097199"),
    *_oauth(
        "auth",
        token="e4b1c7690000071b000004f5000004f50000070c5a6b7c8d9e0f1a",
        expires="1772100799",
        user_id="1269",
        refresh="f7d3e2690000071b000004f5000004f50000070c1a0f9e8d7c6b5a",
        scope="imbot",
    ),
]

_JOIN_CHAT: Final[Pairs] = [
    ("event", "ONIMBOTJOINCHAT"),
    ("event_handler_id", "459"),
    ("data[BOT][567][BOT_ID]", "567"),
    ("data[BOT][567][BOT_CODE]", "rules_bot"),
    ("data[BOT][567][user_id]", "567"),
    ("data[BOT][567][client_id]", _CLIENT_ID),
    ("data[BOT][567][application_token]", _APP_TOKEN),
    ("data[PARAMS][CHAT_TYPE]", "C"),
    ("data[PARAMS][MESSAGE_TYPE]", "C"),
    ("data[PARAMS][BOT_ID]", "567"),
    ("data[PARAMS][USER_ID]", "27"),
    ("data[PARAMS][CHAT_ID]", "1157"),
    ("data[PARAMS][CHAT_AUTHOR_ID]", "27"),
    ("data[PARAMS][CHAT_ENTITY_TYPE]", ""),
    ("data[PARAMS][ACCESS_HISTORY]", "1"),
    ("data[PARAMS][DIALOG_ID]", "chat1157"),
    ("data[PARAMS][LANGUAGE]", "en"),
    ("data[USER][ID]", "27"),
    ("data[USER][NAME]", "Svetlana Ivanova"),
    ("data[USER][FIRST_NAME]", "Svetlana"),
    ("data[USER][LAST_NAME]", "Ivanova"),
    ("data[USER][GENDER]", "F"),
    ("ts", "1772094525"),
    ("auth[domain]", _DOMAIN),
    ("auth[member_id]", _MEMBER),
    ("auth[user_id]", "27"),
    ("auth[application_token]", _APP_TOKEN),
]

REFERENCE_PAIRS: Final[dict[str, Pairs]] = {
    "ONUSERADD/app": [
        *_USER_ADD_HEAD,
        *_USER_ADD_DATA,
        ("ts", "1772432045"),
        *_oauth(
            "auth",
            token="2d5c9a690000071b00000f4400000f5d0000070c1f2e3d4c5b6a79",
            expires="1772435645",
            user_id="245",
            refresh=None,
        ),
    ],
    "ONUSERADD/webhook": [*_USER_ADD_HEAD, *_USER_ADD_DATA, ("ts", "1772432045"), *_hook_auth()],
    "ONAPPINSTALL": [
        ("event", "ONAPPINSTALL"),
        ("event_handler_id", "1"),
        ("data[VERSION]", "1"),
        ("data[ACTIVE]", "Y"),
        ("data[INSTALLED]", "Y"),
        ("data[LANGUAGE_ID]", "en"),
        ("ts", "1772432000"),
        *_oauth(
            "auth",
            token="7a3e0b690000071b00000001000000010000070c2b3c4d5e6f7a8b",
            expires="1772435600",
            user_id="1",
            refresh="4s386p3q0tr8dy89xvmt96234v3dljg8",
        ),
    ],
    "ONAPPUNINSTALL": [
        ("event", "ONAPPUNINSTALL"),
        ("event_handler_id", "2"),
        ("data[LANGUAGE_ID]", "en"),
        ("data[CLEAN]", "1"),
        ("ts", "1772999999"),
        *_hook_auth(("domain", "server_endpoint", "client_endpoint")),
    ],
    "ONIMBOTMESSAGEADD": _MESSAGE_ADD,
    "ONIMCOMMANDADD": _COMMAND_ADD,
    "ONIMBOTJOINCHAT": _JOIN_CHAT,
    "ONIMBOTDELETE": [
        ("event", "ONIMBOTDELETE"),
        ("event_handler_id", "439"),
        ("data[BOT_ID]", "567"),
        ("data[BOT_CODE]", "rules_bot"),
        ("ts", "1772090363"),
        ("auth[domain]", _DOMAIN),
        ("auth[member_id]", _MEMBER),
        ("auth[user_id]", "27"),
        ("auth[application_token]", _APP_TOKEN),
    ],
}

REFERENCE_BODIES: Final[dict[str, bytes]] = {k: wire(v) for k, v in REFERENCE_PAIRS.items()}
