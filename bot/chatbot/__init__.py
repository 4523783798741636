"""The chat bot: people ask to join chats, and ask why they are (not) in them.

- `events`: `BotRequest`, one shape for classic (v1) and Chatbots 2.0 events
- `runtime`: state keys, the per-worker cache, the one reply of a request
- `requests`: the `bot.request` executor (budget, departments, rules → adds + reply)
- `replies`: the `bot.reply` executor (waits for the adds, then says what happened)
- `why`: `/why`, the author's own explanation; `texts`: every sentence, en/ru
- `limits`: per-person and portal-wide request budgets in the store

The handler that turns events into requests is `handlers/keyword_join.py`.
"""

from __future__ import annotations
