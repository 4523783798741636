"""Job kind → executor: the registry, and the context every executor gets.

Executors live in feature modules (`bot.membership`, …) and turn claimed jobs into REST
calls and per-job results; the worker turns results into store calls.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.directory import DepartmentDirectory
from bot.errors import PortalError, PortalJobError, PortalRateLimited, PortalWideError
from bot.jobs import ADD_TO_CHAT, BOT_REPLY, BOT_REQUEST, REMOVE_FROM_CHAT, RESOLVE_USER, Job
from bot.metrics import Metrics
from bot.outcomes import Dead, Result, Retry
from bot.rest import PortalClient
from bot.rules import CompiledRules, RuleSet

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.actions")

GROUPS_PER_BATCH = 16  # three commands per chat group, at most 50 commands per batch


@dataclass
class WorkContext:
    client: PortalClient
    directory: DepartmentDirectory
    rules: Callable[[], RuleSet]
    clock: Callable[[], float]
    metrics: Metrics | None = None
    # Executors that read their own progress or shared budgets (the chat bot) need these.
    store: AsyncStore | None = None
    settings: Settings | None = None
    caches: dict[str, object] = field(default_factory=dict)  # per-feature, live with the worker
    _compiled: tuple[str, int, CompiledRules] | None = None

    async def compiled(self, require: Sequence[int] = ()) -> CompiledRules:
        """Rules compiled against the current tree; rebuilt when either changes."""
        tree = await self.directory.tree(require)
        ruleset = self.rules()
        cached = self._compiled
        if cached is None or cached[0] != ruleset.digest or cached[1] != id(tree):
            compiled = CompiledRules.build(ruleset, tree)
            for problem in compiled.problems:
                if problem.severity == "error":
                    log.error("rule disabled: %s", problem)
                else:
                    log.warning("%s", problem)
            self._compiled = cached = (ruleset.digest, id(tree), compiled)
        return cached[2]


Executor = Callable[[Sequence[Job], WorkContext], Awaitable[dict[int, Result]]]


def failure(exc: PortalError) -> Result:
    if isinstance(exc, PortalWideError):
        raise exc
    if isinstance(exc, PortalJobError):
        return Dead(exc.code, exc.hint or exc.description or exc.code)
    not_before = exc.reset_at if isinstance(exc, PortalRateLimited) else None
    return Retry(exc.code, exc.description or exc.code, not_before)


def _registry() -> Mapping[str, Executor]:
    from bot import botreply, botwork, membership
    from bot.reconcile import remove

    return {
        RESOLVE_USER: membership.resolve_users,
        ADD_TO_CHAT: membership.add_to_chats,
        REMOVE_FROM_CHAT: remove.remove_from_chats,
        BOT_REQUEST: botwork.handle_requests,
        BOT_REPLY: botreply.send_replies,
    }


EXECUTORS: Mapping[str, Executor] = _registry()
