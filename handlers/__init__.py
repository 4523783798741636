"""Every feature's router, composed explicitly: adding an event is a visible diff here."""

from __future__ import annotations

from bot.routing import Router
from handlers import department_chats, keyword_join

router = Router(department_chats.router, keyword_join.router)

__all__ = ["router"]
