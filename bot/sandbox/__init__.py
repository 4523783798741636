"""The stateful fake Bitrix24 portal: the one object tests and `autojoin demo` talk to.

    portal = FakePortal()                      # the sample company, webhook user 1
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=portal.app),
                             base_url=portal.webhook_url())
    ...
    assert 8 in portal.chat_members(101)

Everything goes over HTTP (`portal.app`), so the service's real REST client runs unchanged.
The methods below are for setting the stage and asserting; the same controls exist over
HTTP under `/_admin/` for tests in another process.

The portal speaks the classic API (`user.get`, `department.get`, `im.chat.user.*`,
`im.dialog.get`, `imbot.*` with CLIENT_ID, `batch`) and Chatbots 2.0 (`imbot.v2.Bot.*`,
`Command.*`, `Chat.Message.send`, `Event.get`, `Revision.get` with botToken ownership; see
`methods_v2`). Things that happen at run time go through `portal.stage`:

    bot_id = ...                                   # registered with imbot.v2.Bot.register
    portal.stage.message(bot_id, 4, "join marketing")          # 1:1; chat_id= for a group
    portal.stage.command(bot_id, 4, "join", "marketing")       # ONIMBOTV2COMMANDADD
    portal.stage.join(bot_id, 2, chat_id=101)                  # ONIMBOTV2JOINCHAT
    portal.stage.hire(name="Nina", departments=[8])            # a new user (+ ONUSERADD)
    portal.stage.rewind(bot_id)                                # serve acked events again

A fetch-mode bot's events wait in its queue for `imbot.v2.Event.get`; a webhook-mode bot's
(and outgoing-webhook ONUSERADD) are POSTed on `await portal.deliver()`, through
`portal.outbound` (an httpx transport; None is the network). The admin API delivers before
it answers, and a REST call that owes a POST sends it right after its answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from starlette.applications import Starlette

from bot.sandbox.app import create_app
from bot.sandbox.portal import Portal
from bot.sandbox.server import serve_in_thread
from bot.sandbox.stage import Stage
from bot.sandbox.state import Call, Chat, Department, Message, PortalState, User, Webhook

__all__ = [
    "Call",
    "Chat",
    "Department",
    "FakePortal",
    "Message",
    "PortalState",
    "User",
    "Webhook",
]


class FakePortal(Portal):
    """A `Portal` with its stage (run-time happenings) and its HTTP app."""

    @cached_property
    def stage(self) -> Stage:
        return Stage(self)

    @cached_property
    def app(self) -> Starlette:
        return create_app(self, self.stage)

    @contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the app under uvicorn on a free port; yield the base URL (no `/rest/...`)."""
        with serve_in_thread(self.app, host, port) as base:
            try:
                yield base
            finally:
                self.release()  # parked requests would otherwise stall the shutdown
