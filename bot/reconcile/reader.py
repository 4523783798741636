"""Reading the portal in as few requests as possible.

Every read is a set of independent commands — pages of list methods and single calls —
packed 50 to a `batch` (one request each, reference §7.3). A list's first page tells its
`total`, and only then are its other `start=` pages known, so the first request carries the
first page of every list plus as many single calls as fit; every later request carries the
next 50 commands. For L lists with P_i pages each and C single calls:

    requests = 1 + ceil((sum(P_i - 1) + max(0, C - (50 - L))) / 50)

Transient failures of a whole batch (rate limit, 5xx) are retried a few times; a list page
that fails is an error for the whole read, a single call that fails is reported to the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import PortalError, PortalRateLimited, PortalRetryable
from bot.reconcile.model import ReadError
from bot.rest import MAX_BATCH, BatchReply, PortalClient

PAGE = 50
RETRIES = 4

Command = tuple[str, str, Mapping[str, Any]]  # key, method, params
Report = Callable[[int, int], None]  # commands done, commands known
Notice = Callable[[str], None]  # a line for the person waiting (retries)


def request_count(pages: Sequence[int], calls: int) -> int:
    """Requests `Reader.read` makes for lists of `pages` pages and `calls` single calls."""
    later = sum(max(1, p) - 1 for p in pages) + max(0, calls - (MAX_BATCH - len(pages)))
    return 1 + math.ceil(later / MAX_BATCH)


def pages_for(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE))


@dataclass(slots=True)
class ReadResult:
    lists: dict[str, list[Any]] = field(default_factory=dict)
    calls: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, PortalError] = field(default_factory=dict)


class Reader:
    """Runs commands in full batches and counts the requests it made."""

    def __init__(
        self, client: PortalClient, report: Report | None = None, notice: Notice | None = None
    ) -> None:
        self.client = client
        self.report = report
        self.notice = notice
        self.requests = 0  # HTTP requests to the portal (batches, retries included)
        self.reads = 0  # REST commands inside them
        self._done = 0
        self._known = 0

    async def read(
        self, lists: Sequence[tuple[str, str, Mapping[str, Any]]], calls: Sequence[Command]
    ) -> ReadResult:
        """Every page of each list (name, method, params) and every single call."""
        room = max(0, MAX_BATCH - len(lists))
        first: list[Command] = [(f"{n}:0", m, {**p, "start": 0}) for n, m, p in lists]
        first += list(calls[:room])
        self._known += len(first)
        result = ReadResult()
        replies = await self._run(first)
        later: list[Command] = []
        totals: dict[str, int | None] = {}
        for name, method, params in lists:
            key = f"{name}:0"
            if key in replies.errors:
                raise replies.errors[key]
            total = replies.total.get(key)
            totals[name] = total
            rows = total if total is not None else len(_rows(replies.result.get(key), method))
            later += [
                (f"{name}:{s}", method, {**params, "start": s})
                for s in range(PAGE, pages_for(rows) * PAGE, PAGE)
            ]
        later += list(calls[room:])
        self._known += len(later)
        more = await self._run(later)
        replies.result.update(more.result)
        replies.errors.update(more.errors)
        replies.total.update(more.total)
        for name, method, _ in lists:
            result.lists[name] = self._collect(name, method, replies, totals[name])
        for key, _, _ in calls:
            if key in replies.errors:
                result.errors[key] = replies.errors[key]
            else:
                result.calls[key] = replies.result.get(key)
        return result

    def _collect(self, name: str, method: str, replies: BatchReply, total: int | None) -> list[Any]:
        rows: list[Any] = []
        keys = sorted(
            (k for k in replies.result.keys() | replies.errors.keys() if k.startswith(name + ":")),
            key=lambda k: int(k.rpartition(":")[2]),
        )
        for key in keys:
            if key in replies.errors:
                raise replies.errors[key]
            page_total = replies.total.get(key)
            if total is not None and page_total is not None and page_total != total:
                raise ReadError(
                    f"{method}: the list changed while it was read ({total} rows, then "
                    f"{page_total}); run again"
                )
            rows.extend(_rows(replies.result.get(key), method))
        return rows

    async def _run(self, commands: Sequence[Command]) -> BatchReply:
        merged = BatchReply({}, {}, {}, {})
        for start in range(0, len(commands), MAX_BATCH):
            chunk = commands[start : start + MAX_BATCH]
            reply = await self._batch({key: (method, params) for key, method, params in chunk})
            merged.result.update(reply.result)
            merged.errors.update(reply.errors)
            merged.total.update(reply.total)
            self._done += len(chunk)
            self.reads += len(chunk)
            if self.report is not None:
                self.report(self._done, self._known)
        return merged

    async def _batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]]) -> BatchReply:
        bucket = self.client.bucket
        for attempt in range(RETRIES + 1):
            self.requests += 1
            try:
                return await self.client.batch(commands)
            except PortalRetryable as exc:
                if attempt == RETRIES:
                    raise
                wait = 2.0**attempt
                if isinstance(exc, PortalRateLimited) and exc.reset_at is not None:
                    wait = max(wait, exc.reset_at - bucket.clock())
                wait = min(wait, 60.0)
                if self.notice is not None:  # silence for 15 s reads as a hang
                    self.notice(
                        f"{exc.code}: {exc.description or exc.code}; retry {attempt + 1} of "
                        f"{RETRIES} in {wait:.0f} s"
                    )
                await bucket.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def _rows(page: Any, method: str) -> list[Any]:
    if isinstance(page, Mapping):
        return list(page.values())  # PHP arrays with sparse keys arrive as objects
    if page is None:
        return []
    if not isinstance(page, list):
        raise ReadError(f"{method}: a list page is not a list")
    return page
