"""What every executor gets and returns: the shared types between the worker and the features.

An executor turns claimed jobs into REST calls and one `Result` per job; the worker turns
results into store calls. This module imports no executor, so features import it freely and
the registry (`bot.actions`) imports the features.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.departments import DepartmentDirectory
from bot.errors import PortalError, PortalJobError, PortalRateLimited, PortalWideError
from bot.jobs import Job
from bot.metrics import Metrics
from bot.outcomes import Dead, Result, Retry
from bot.rest import PortalClient
from bot.rules import CompiledRules, RuleSet
from bot.settings import Settings
from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.executor")

T = TypeVar("T")


@dataclass
class WorkContext:
    """Everything an executor may use; built once per worker by the composition root."""

    client: PortalClient
    directory: DepartmentDirectory
    rules: Callable[[], RuleSet]
    clock: Callable[[], float]
    store: AsyncStore
    settings: Settings
    metrics: Metrics
    _caches: dict[type[Any], Any] = field(default_factory=dict)
    _compiled: tuple[str, int, CompiledRules] | None = None

    def cache(self, kind: type[T]) -> T:
        """A feature's per-worker cache, made on first use (`kind()` must take no arguments)."""
        found = self._caches.get(kind)
        if found is None:
            found = self._caches[kind] = kind()
        assert isinstance(found, kind)
        return found

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
    """The worker's failure policy for one job: per-job errors die, the rest retry.

    Portal-wide errors are re-raised: the worker pauses the whole queue for them."""
    if isinstance(exc, PortalWideError):
        raise exc
    if isinstance(exc, PortalJobError):
        return Dead(exc.code, exc.hint or exc.description or exc.code)
    not_before = exc.reset_at if isinstance(exc, PortalRateLimited) else None
    return Retry(exc.code, exc.description or exc.code, not_before)
