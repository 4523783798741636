"""The one exception tree of autojoin.

    AutojoinError                      exit 1
    ├── ConfigError                    exit 1 (a setting, a file or the host is wrong)
    │   ├── SettingsError              names the variable (or every missing one, at once)
    │   ├── EnvFileError               `.env:LINE: message`
    │   ├── RulesError                 carries every `file:line:col: message`
    │   ├── ListenError                `serve` cannot listen on its host and port
    │   └── NoDatabase                 a read-only command found no database to read
    ├── EventError                     HTTP 400 (an inbound event was refused)
    │   ├── PayloadTooLarge            HTTP 413
    │   ├── UnsupportedMediaType       HTTP 415
    │   ├── MalformedEvent             HTTP 400
    │   ├── BadToken                   HTTP 401
    │   ├── ForeignPortal              HTTP 403
    │   ├── ClientGone                 HTTP 400 (the sender hung up mid-body)
    │   ├── StaleEvent                 HTTP 409 (outside the freshness window)
    │   └── PushesOff                  HTTP 403 (no token to check pushed events by)
    ├── PortalError                    a Bitrix24 REST call failed; see `bot.rest.errors`
    │   ├── PortalRetryable            retried with backoff, spends an attempt
    │   │   └── PortalRateLimited      QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT
    │   ├── PortalJobError             this job is dead: the admin must fix something
    │   └── PortalWideError            pauses the whole queue, spends nothing
    ├── StoreError                     the database refused an operation
    ├── NothingDone                    exit 1: the command found nothing it was asked about
    └── UsageError                     exit 2 (bad command line)

HTTP statuses and exit codes are read from the class attributes `http_status` and
`exit_code`, so the mapping lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


class AutojoinError(Exception):
    """Base of every error autojoin raises on purpose."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500


class ConfigError(AutojoinError):
    """Configuration is missing or invalid; the process cannot do its job."""


class SettingsError(ConfigError):
    """One environment setting is missing or invalid (`combine` reports several in one line)."""

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        self.message = message
        super().__init__(f"{variable}: {message}")

    @classmethod
    def combine(cls, errors: Sequence[SettingsError]) -> SettingsError:
        """Every problem in one line, so a first start shows all that is missing at once."""
        first, *rest = errors
        joined = "; ".join([first.message, *(str(e) for e in rest)])
        return cls(first.variable, joined)


class EnvFileError(ConfigError):
    """The `.env` file cannot be read; `line` is 1-based (its text is never shown: secrets)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {message}")


class ListenError(ConfigError):
    """`serve` (or `demo --keep`) cannot listen where it was told to."""


class NoDatabase(ConfigError):
    """A command that only reads the database found none (it never creates one)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding in a rules file, positioned for editors (1-based line and column)."""

    path: str
    line: int
    col: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}"


class RulesError(ConfigError):
    """rules.yaml is invalid; every problem is listed, not only the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class EventError(AutojoinError):
    """An inbound event was refused; `reason` is a short closed-set code for metrics."""

    http_status: ClassVar[int] = 400
    reason: ClassVar[str] = "malformed"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class PayloadTooLarge(EventError):
    http_status = 413
    reason = "too_large"


class UnsupportedMediaType(EventError):
    http_status = 415
    reason = "media_type"


class MalformedEvent(EventError):
    reason = "malformed"


class BadToken(EventError):
    http_status = 401
    reason = "token"


class ForeignPortal(EventError):
    http_status = 403
    reason = "foreign_portal"


class ClientGone(EventError):
    """The sender hung up before the body was complete: nobody is left to answer."""

    reason = "disconnected"


class StaleEvent(EventError):
    http_status = 409
    reason = "stale"


class PushesOff(EventError):
    """Pull-only `serve`: nothing pushed can be authenticated, so nothing pushed is taken."""

    http_status = 403
    reason = "pushes_off"


class PortalError(AutojoinError):
    """A REST call failed. `code` is the Bitrix24 `error` string (or a transport code)."""

    hint: ClassVar[str] = ""

    def __init__(
        self, method: str, code: str, description: str = "", status: int | None = None
    ) -> None:
        self.method = method
        self.code = code
        self.description = description
        self.status = status
        super().__init__(f"{method}: {code}" + (f": {description}" if description else ""))


class PortalRetryable(PortalError):
    """Transient: try again later with backoff."""


class PortalRateLimited(PortalRetryable):
    """The portal's rate or operating limit was hit; `reset_at` is when a method unblocks."""

    def __init__(
        self,
        method: str,
        code: str,
        description: str = "",
        status: int | None = None,
        reset_at: float | None = None,
    ) -> None:
        super().__init__(method, code, description, status)
        self.reset_at = reset_at


class PortalJobError(PortalError):
    """Permanent for this job: retrying cannot help until an admin fixes something."""


class PortalWideError(PortalError):
    """The whole portal connection is unusable (credentials, scope, plan, block)."""


class StoreError(AutojoinError):
    """The database failed or refused an operation."""


class NothingDone(AutojoinError):
    """What the command was asked about does not exist (`retry` of a job that is not dead,
    `explain` of an unknown user): succeeding on nothing must not look like success."""


class UsageError(AutojoinError):
    exit_code = 2
