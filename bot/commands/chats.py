"""`autojoin chats`: the chats the webhook user can see, for writing rules.

ID, title, member count and whether autojoin may add people there (the same verdict as
`check --portal`), read from the webhook user's own chat list (`im.recent.list`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio

from bot.reconcile.chats import list_chats
from bot.reconcile.model import ChatCard
from bot.reconcile.session import Runtime, open_client
from bot.settings import Settings


def register(sub: Any) -> None:
    chats = sub.add_parser(
        "chats", help="the chats the webhook user can see: ID, title, members, may autojoin add"
    )
    chats.add_argument("--format", choices=("text", "json"), default="text")
    chats.set_defaults(func=cmd_chats)


def cmd_chats(args: argparse.Namespace) -> int:
    settings = Settings.load()
    settings.require(webhook=True)
    code: int = anyio.run(run_chats, args, Runtime(settings))
    return code


async def run_chats(args: argparse.Namespace, runtime: Runtime) -> int:
    async with open_client(runtime) as client:
        cards = await list_chats(client)
    if args.format == "json":
        rows = [_json(card) for card in cards]
        runtime.print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for line in render_chats(cards):
        runtime.print(line)
    return 0


def _json(card: ChatCard) -> dict[str, object]:
    return {
        "chat_id": card.chat_id,
        "title": card.title,
        "members": card.members,
        "role": card.role,
        "may_add": card.add_problem is None,
        "why_not": card.add_problem,
    }


def render_chats(cards: list[ChatCard]) -> list[str]:
    lines = [f"{'ID':>7}  {'MEMBERS':>7}  {'ADD':<3}  TITLE"]
    for card in cards:
        members = "?" if card.members is None else str(card.members)
        may = "no" if card.add_problem else "yes"
        lines.append(f"{card.chat_id:>7}  {members:>7}  {may:<3}  {card.title}")
    refused = [card for card in cards if card.add_problem]
    if refused:
        lines.append("")
        lines.append("Where autojoin may not add:")
        lines += [f"  {card.chat_id}: {card.add_problem}" for card in refused]
    usable = len(cards) - len(refused)
    lines.append("")
    lines.append(
        f"{len(cards)} chats the webhook user is in; autojoin may add people to {usable}. "
        "Use the ID in rules.yaml (chats: [ID]). A chat the webhook user is not in is not "
        "listed, and a rule cannot use it until the webhook user is added."
    )
    return lines
