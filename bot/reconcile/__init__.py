"""Reconcile: make chat membership follow the department rules for everyone, diff first.

`plan` reads the portal and shows the changes; `sync` applies them through the job queue;
a scheduled pass inside `serve` repairs drift for rules already synced; `explain` tells why
one person is (or is not) in each chat. Modules:

- `reader`: the fewest-requests batched reads; `engine`: one pass (read + plan), no writes
- `planner`: the pure decision; `ledger`: who each rule already handled
- `apply`: plan → jobs; `remove`: the `chat.remove` executor; `sync`: the `sync` run
- `schedule`: the periodic pass and its lease; `state`: bookkeeping in the store
- `explain`, `portal_check`, `render`, `progress`: reports
"""

from __future__ import annotations
