"""JSON views of the fake portal's state: what `/_admin/state` and the admin API return."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bot.sandbox.state import Bot, Call, Chat, Command, Message, PortalState, User


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "last_name": user.last_name,
        "active": user.active,
        "departments": list(user.departments),
        "email": user.email,
        "user_type": user.user_type,
        "timestamp_x": user.timestamp_x,
    }


def chat_json(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.id,
        "title": chat.title,
        "type": chat.type,
        "owner": chat.owner,
        "members": sorted(chat.members),
        "managers": sorted(chat.managers),
        "manage_users_add": chat.manage_users_add,
        "manage_users_delete": chat.manage_users_delete,
        "extend_forbidden": chat.extend_forbidden,
        "history_hidden": {str(k): v for k, v in sorted(chat.history_hidden.items())},
        "joins": [[user_id, at] for user_id, at in chat.joins],
    }


def bot_json(bot: Bot) -> dict[str, Any]:
    return {
        "id": bot.id,
        "code": bot.code,
        "client_id": bot.client_id,
        "type": bot.type,
        "properties": bot.properties,
        "handlers": bot.handlers,
        "api": 1 if bot.v2 is None else 2,
        "event_mode": None if bot.v2 is None else bot.v2.event_mode,
        "webhook_url": None if bot.v2 is None else bot.v2.webhook_url,
    }


def command_json(command: Command) -> dict[str, Any]:
    return {
        "id": command.id,
        "bot_id": command.bot_id,
        "command": command.command,
        "lang": command.lang,
        "handler": command.handler,
        "common": command.common,
        "hidden": command.hidden,
        "extranet_support": command.extranet_support,
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "method": message.method,
        "bot_id": message.bot_id,
        "dialog_id": message.dialog_id,
        "message": message.message,
        "client_id": message.client_id,
        "command_id": message.command_id,
        "message_id": message.message_id,
        "keyboard": message.keyboard,
        "attach": message.attach,
        "at": message.at,
        "template_id": message.template_id,
        "system": message.system,
        "url_preview": message.url_preview,
    }


def call_json(call: Call) -> dict[str, Any]:
    return {
        "method": call.method,
        "params": call.params,
        "status": call.status,
        "error": call.error,
        "at": call.at,
        "batch": call.batch,
        "key": call.key,
    }


def calls_summary(calls: list[Call]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for call in calls:
        entry = summary.setdefault(call.method, {"count": 0, "errors": Counter()})
        entry["count"] += 1
        if call.error is not None:
            entry["errors"][call.error] += 1
    return {
        m: {"count": e["count"], "errors": dict(e["errors"])} for m, e in sorted(summary.items())
    }


def snapshot(state: PortalState) -> dict[str, Any]:
    counters = state.counters
    return {
        "users": [user_json(u) for _, u in sorted(state.users.items())],
        "departments": [
            {"id": d.id, "name": d.name, "parent": d.parent, "sort": d.sort}
            for _, d in sorted(state.departments.items())
        ],
        "chats": [chat_json(c) for _, c in sorted(state.chats.items())],
        "bots": [bot_json(b) for _, b in sorted(state.bots.items())],
        "commands": [command_json(c) for _, c in sorted(state.commands.items())],
        "messages": [message_json(m) for m in state.messages],
        "webhooks": [
            {"user_id": w.user_id, "revoked": w.revoked, "scopes": sorted(w.scopes)}
            for w in state.webhooks
        ],
        "counters": {
            "http_requests": counters.http_requests,
            "rejected_rate_limit": counters.rejected_rate_limit,
            "max_bucket_level": counters.max_bucket_level,
            "held_now": counters.held_now,
        },
        "calls": calls_summary(state.calls),
        "held": state.held,
        "down": state.down,
        "pending_faults": len(state.faults),
        "v2": {
            "queues": {
                str(bot_id): {"pending": len(q.pending), "acknowledged": len(q.acknowledged)}
                for bot_id, q in sorted(state.v2.queues.items())
            },
            "subscriptions": [{"event": s.event, "url": s.url} for s in state.v2.subscriptions],
            "outbox": len(state.v2.outbox),
            "deliveries": len(state.v2.deliveries),
        },
    }
