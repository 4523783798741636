"""autojoin: put Bitrix24 people in the right chats, by reviewable rules."""

from __future__ import annotations

__version__ = "0.1.0"
