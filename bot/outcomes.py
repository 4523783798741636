"""What an executor says about each job it ran; the worker turns these into store calls."""

from __future__ import annotations

from dataclasses import dataclass

from bot.jobs import AuditEntry, NewJob


@dataclass(frozen=True, slots=True)
class Done:
    followups: tuple[NewJob, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    ledger: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    """Transient failure; `not_before` overrides the backoff (e.g. a method's reset time).

    `poll` replaces the exponential backoff with a fixed interval: for a job that is not
    failing but waiting on others (a reply waiting for its adds), backing off would only
    delay the answer once the wait is over.
    """

    code: str
    error: str
    not_before: float | None = None
    poll: float | None = None


@dataclass(frozen=True, slots=True)
class Dead:
    """Permanent failure; `error` carries the hint that tells the admin what to fix."""

    code: str
    error: str
    audit: tuple[AuditEntry, ...] = ()


Result = Done | Retry | Dead
