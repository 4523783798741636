"""Settings, read once from the environment and an optional `.env` file.

Only this module reads the environment. Values are checked when a command needs them
(`require`, `require_*`), so `check` and `demo` run without any Bitrix24 setting, a worker
never asks for the events token, and a first `serve` names everything missing at once, in
one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypedDict, TypeVar

from bot.envfile import read_env_file
from bot.errors import SettingsError, StoreError
from bot.logsafe import SECRETS
from bot.rest.webhook import WebhookUrl
from bot.store.urls import parse_url

T = TypeVar("T")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Seconds. The heartbeat beats every third of the lease: shorter only loads the database.
MIN_LEASE = 1.0
BOT_TOKEN_MAX = 40  # Bitrix24 refuses longer botTokens at registration (Chatbots 2.0)
BOT_EVENT_MODES = ("fetch", "webhook")
WEBHOOK_TOKEN_PREFIX = "custom"  # a webhook-registered v2 bot's events carry "custom" + botToken


class Secret:
    """A string that prints as *** everywhere except where explicitly revealed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        SECRETS.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _number(env: Mapping[str, str], name: str, default: T, cast: Callable[[str], T]) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise SettingsError(name, f"expected a number, got {raw!r}") from None
    if isinstance(value, int | float) and value < 0:
        raise SettingsError(name, "must not be negative")
    return value


def _tokens(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(item.strip()) for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    webhook_url: Secret | None = None
    app_tokens: tuple[Secret, ...] = ()
    bot_client_id: Secret | None = None
    rules_path: Path = Path("rules.yaml")
    database_url: Secret = field(default_factory=lambda: Secret("sqlite:///autojoin.db"))
    public_url: str = ""
    events_path: str = "/events"
    portal_domain: str = ""
    member_id: str = ""
    rate: float = 2.0
    burst: int = 50
    max_body: int = 1024 * 1024
    lease_seconds: float = 6.0
    retry_cap: float = 600.0
    department_ttl: float = 600.0
    max_event_age: float = 0.0
    coalesce_window: float = 0.2
    log_level: str = "INFO"
    log_format: str = "text"
    rules_poll: float = 2.0
    keep_jobs_days: float = 7.0
    keep_events_days: float = 90.0
    keep_audit_days: float = 365.0
    bot_code: str = "autojoin"
    bot_name: str = "autojoin"
    bot_user_limit: int = 5
    bot_global_limit: int = 60
    max_removals: int = 10
    reconcile_minutes: float = 15.0
    full_reconcile_hours: float = 24.0
    bot_token: Secret | None = None  # Chatbots 2.0; B24_BOT_CLIENT_ID stays the classic bot
    bot_event_mode: str = "fetch"
    bot_poll_seconds: float = 5.0
    hire_poll_seconds: float = 300.0

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None
    ) -> Settings:
        """Environment wins over `.env`; the file is optional."""
        outside = os.environ if environ is None else environ
        env = read_env_file(env_file if env_file is not None else Path(".env"), outside)
        env.update(outside)
        webhook = env.get("B24_WEBHOOK_URL", "").strip()
        client_id = env.get("B24_BOT_CLIENT_ID", "").strip()
        events_path = env.get("AUTOJOIN_EVENTS_PATH", "/events").strip() or "/events"
        if not events_path.startswith("/"):
            raise SettingsError("AUTOJOIN_EVENTS_PATH", "must start with '/'")
        if events_path != "/events":
            SECRETS.add(events_path.strip("/"))  # a secret path is a credential too
        log_level = env.get("AUTOJOIN_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if log_level not in LOG_LEVELS:
            raise SettingsError("AUTOJOIN_LOG_LEVEL", f"expected one of {', '.join(LOG_LEVELS)}")
        log_format = env.get("AUTOJOIN_LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in {"text", "json"}:
            raise SettingsError("AUTOJOIN_LOG_FORMAT", "expected 'text' or 'json'")
        bot_code = env.get("AUTOJOIN_BOT_CODE", "").strip() or "autojoin"
        if not bot_code.isascii() or any(c.isspace() for c in bot_code):
            raise SettingsError("AUTOJOIN_BOT_CODE", "use latin letters, digits, '_' or '-'")
        burst = _number(env, "B24_BURST", 50, int)
        rate = _number(env, "B24_RATE", 2.0, float)
        if burst < 1 or rate <= 0:
            raise SettingsError("B24_RATE" if rate <= 0 else "B24_BURST", "must be positive")
        lease = _number(env, "AUTOJOIN_LEASE_SECONDS", 6.0, float)
        if lease < MIN_LEASE:
            raise SettingsError("AUTOJOIN_LEASE_SECONDS", f"must be at least {MIN_LEASE:g} seconds")
        return cls(
            webhook_url=Secret(webhook) if webhook else None,
            app_tokens=_tokens(env.get("B24_APP_TOKEN", "")),
            bot_client_id=Secret(client_id) if client_id else None,
            rules_path=Path(env.get("AUTOJOIN_RULES", "").strip() or "rules.yaml"),
            database_url=Secret(
                env.get("AUTOJOIN_DATABASE_URL", "").strip() or "sqlite:///autojoin.db"
            ),
            public_url=env.get("AUTOJOIN_PUBLIC_URL", "").strip().rstrip("/"),
            events_path=events_path,
            portal_domain=env.get("B24_PORTAL_DOMAIN", "").strip().lower(),
            member_id=env.get("B24_MEMBER_ID", "").strip(),
            rate=rate,
            burst=burst,
            max_body=_number(env, "AUTOJOIN_MAX_BODY", 1024 * 1024, int),
            lease_seconds=lease,
            retry_cap=_number(env, "AUTOJOIN_RETRY_CAP", 600.0, float),
            department_ttl=_number(env, "AUTOJOIN_DEPARTMENT_TTL", 600.0, float),
            max_event_age=_number(env, "AUTOJOIN_MAX_EVENT_AGE", 0.0, float),
            coalesce_window=_number(env, "AUTOJOIN_COALESCE_MS", 200, int) / 1000,
            log_level=log_level,
            log_format=log_format,
            rules_poll=_number(env, "AUTOJOIN_RULES_POLL", 2.0, float),
            keep_jobs_days=_number(env, "AUTOJOIN_KEEP_JOBS_DAYS", 7.0, float),
            keep_events_days=_number(env, "AUTOJOIN_KEEP_EVENTS_DAYS", 90.0, float),
            keep_audit_days=_number(env, "AUTOJOIN_KEEP_AUDIT_DAYS", 365.0, float),
            bot_code=bot_code,
            bot_name=env.get("AUTOJOIN_BOT_NAME", "").strip() or "autojoin",
            bot_user_limit=_number(env, "AUTOJOIN_BOT_USER_LIMIT", 5, int),
            bot_global_limit=_number(env, "AUTOJOIN_BOT_GLOBAL_LIMIT", 60, int),
            max_removals=_number(env, "AUTOJOIN_MAX_REMOVALS", 10, int),
            reconcile_minutes=_number(env, "AUTOJOIN_RECONCILE_MINUTES", 15.0, float),
            full_reconcile_hours=_number(env, "AUTOJOIN_FULL_RECONCILE_HOURS", 24.0, float),
            **_bot_v2(env),
        )

    def __post_init__(self) -> None:
        if self.max_event_age and self.keep_events_days * 86_400 <= self.max_event_age:
            raise SettingsError(
                "AUTOJOIN_KEEP_EVENTS_DAYS",
                "dedupe keys must outlive AUTOJOIN_MAX_EVENT_AGE, or a replay inside the "
                "window would look new",
            )

    def require(
        self,
        *,
        tokens: bool = False,
        webhook: bool = False,
        database: bool = False,
        rules: bool = False,
    ) -> None:
        """Check everything a command needs before it starts; every problem in one error."""
        checks: list[Callable[[], object]] = []
        checks += [self.require_tokens] if tokens else []
        checks += [self.require_webhook] if webhook else []
        checks += [self.require_database_url] if database else []
        checks += [self.require_rules_file] if rules else []
        problems: list[SettingsError] = []
        for check in checks:
            try:
                check()
            except SettingsError as exc:
                problems.append(exc)
        if problems:
            raise SettingsError.combine(problems)

    def require_rules_file(self) -> Path:
        """The rules file exists and is a file; its contents are the loader's business."""
        path = self.rules_path
        if path.is_dir():
            _refuse_rules(
                path, "is a directory, not a file (Docker makes one when a mounted file is missing)"
            )
        if not path.exists():
            _refuse_rules(path, "not found")
        if not os.access(path, os.R_OK):
            _refuse_rules(path, "cannot be read by this user; check its owner and mode")
        return path

    @property
    def push_tokens(self) -> tuple[Secret, ...]:
        """Every `auth[application_token]` a pushed event may carry; empty: pushes are off."""
        tokens = self.app_tokens + ((self.bot_client_id,) if self.bot_client_id else ())
        if self.bot_token is not None and self.bot_event_mode == "webhook":
            tokens += (Secret(WEBHOOK_TOKEN_PREFIX + self.bot_token.reveal()),)
        return tokens

    @property
    def bot_fetch(self) -> bool:
        return self.bot_token is not None and self.bot_event_mode == "fetch"

    def require_webhook(self) -> WebhookUrl:
        if self.webhook_url is None:
            raise SettingsError("B24_WEBHOOK_URL", "not set (https://<portal>/rest/<user>/<code>/)")
        return WebhookUrl.parse(self.webhook_url.reveal())

    def require_database_url(self) -> str:
        """The database URL, its form checked; the error names the variable, never the URL."""
        url = self.database_url.reveal()
        try:
            parse_url(url)
        except StoreError as exc:
            raise SettingsError("AUTOJOIN_DATABASE_URL", str(exc)) from None
        return url

    def require_tokens(self) -> tuple[Secret, ...]:
        """Every value accepted as `auth[application_token]` on incoming events."""
        tokens = self.push_tokens
        if not tokens:
            raise SettingsError(
                "B24_APP_TOKEN",
                "not set: the outbound webhook's application token (serve refuses events it "
                "cannot authenticate)",
            )
        return tokens


def _refuse_rules(path: Path, problem: str) -> NoReturn:
    raise SettingsError(
        "AUTOJOIN_RULES",
        f"{path} {problem}; point AUTOJOIN_RULES at your rules file (in a container, mount "
        "the directory that holds it: the image carries no rules)",
    )


class _BotV2(TypedDict):
    bot_token: Secret | None
    bot_event_mode: str
    bot_poll_seconds: float
    hire_poll_seconds: float


def _bot_v2(env: Mapping[str, str]) -> _BotV2:
    """The Chatbots 2.0 settings and the pollers' intervals (one line per mistake)."""
    token = env.get("B24_BOT_TOKEN", "").strip()
    if len(token) > BOT_TOKEN_MAX:
        raise SettingsError(
            "B24_BOT_TOKEN",
            f"{len(token)} characters; Bitrix24 accepts at most {BOT_TOKEN_MAX}: "
            "pick a shorter random string",
        )
    mode = env.get("AUTOJOIN_BOT_EVENT_MODE", "").strip().lower() or "fetch"
    if mode not in BOT_EVENT_MODES:
        raise SettingsError("AUTOJOIN_BOT_EVENT_MODE", "expected 'fetch' or 'webhook'")
    if mode == "webhook" and not env.get("AUTOJOIN_PUBLIC_URL", "").strip():
        raise SettingsError(
            "AUTOJOIN_PUBLIC_URL", "not set: webhook mode needs the https:// address of autojoin"
        )
    poll = _number(env, "AUTOJOIN_BOT_POLL_SECONDS", 5.0, float)
    if poll < 1:
        raise SettingsError("AUTOJOIN_BOT_POLL_SECONDS", "must be at least 1")
    hires = _number(env, "AUTOJOIN_HIRE_POLL_SECONDS", 300.0, float)
    if 0 < hires < 1:
        raise SettingsError("AUTOJOIN_HIRE_POLL_SECONDS", "0 (off) or at least 1")
    return {
        "bot_token": Secret(token) if token else None,
        "bot_event_mode": mode,
        "bot_poll_seconds": poll,
        "hire_poll_seconds": hires,
    }
