"""Database URL parsing and masking: no password may reach a log, an error or a repr."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from bot.errors import StoreError

_USERINFO: Final = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/]*):[^@/]*@")
_PASSWORD_PARAM: Final = re.compile(r"(?i)(password=)[^&\s]*")
POSTGRES_SCHEMES: Final = ("postgresql", "postgres")


def mask_url(url: str) -> str:
    """`scheme://user:***@host/db`; a `password=` parameter is masked too."""
    return _PASSWORD_PARAM.sub(r"\1***", _USERINFO.sub(r"\g<scheme>\g<user>:***@", url))


def scrub(message: str, url: str) -> str:
    """Remove the URL and its password from a driver message (libpq may echo the DSN)."""
    message = message.replace(url, mask_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        message = message.replace(password, "***").replace(unquote(password), "***")
    return mask_url(message)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a store lives: a SQLite path, or a PostgreSQL DSN and optional schema."""

    kind: str  # "sqlite" or "postgres"
    location: str
    schema: str | None = None


def parse_url(url: str) -> Target:
    """`sqlite:///rel.db`, `sqlite:////abs.db`, `postgresql://…[?schema=name]`."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or len(rest) < 2:
            raise StoreError("a SQLite URL is sqlite:///relative.db or sqlite:////absolute.db")
        path = unquote(rest[1:].split("?", 1)[0])
        return Target("sqlite", path)
    if scheme in POSTGRES_SCHEMES:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), None)
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
        return Target("postgres", dsn, schema or None)
    shown = scheme or "(none)"
    raise StoreError(
        f"unsupported database URL scheme {shown!r}: use sqlite:///file.db or postgresql://…"
    )
