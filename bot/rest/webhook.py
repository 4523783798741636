"""The inbound webhook URL, parsed once and never printed with its secret code.

`https://<portal>/rest/<user_id>/<code>/` is both an address and a password: anyone holding
it acts as that employee. `base` exists only to build request URLs; everything meant for
people (`str`, `repr`, error messages) shows `***` instead of the code.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from bot.errors import SettingsError
from bot.logsafe import MASK, SECRETS

VARIABLE: Final = "B24_WEBHOOK_URL"
SHAPE: Final = "https://<portal>/rest/<user_id>/<code>/"

_PATH = re.compile(r"/rest/(?P<user>[0-9]+)/(?P<code>[^/]+)/?")
_CODE = re.compile(r"[A-Za-z0-9_\-]+")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fail(message: str) -> SettingsError:
    return SettingsError(VARIABLE, f"{message} (expected {SHAPE})")


class WebhookUrl:
    """A validated webhook base; equality and hashing use the full URL, printing never does."""

    __slots__ = ("_base", "_code", "_masked", "host", "port", "scheme", "user_id")

    def __init__(
        self, scheme: str, netloc: str, host: str, port: int | None, user_id: int, code: str
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.user_id = user_id
        self._code = code
        self._base = f"{scheme}://{netloc}/rest/{user_id}/{code}/"
        self._masked = f"{scheme}://{netloc}/rest/{user_id}/{MASK}/"

    @classmethod
    def parse(cls, text: str) -> WebhookUrl:
        """Validate the shape; messages never echo the input because it holds the secret."""
        parts = urlsplit(text.strip())
        if parts.scheme not in {"http", "https"}:
            raise _fail("must start with https://")
        if parts.username is not None or parts.password is not None:
            raise _fail("must not contain a user name or password before the host")
        if parts.query or parts.fragment:
            raise _fail("must not contain a query string or fragment")
        host = parts.hostname or ""
        if not host:
            raise _fail("has no host name")
        try:
            port = parts.port
        except ValueError:
            raise _fail("has an invalid port") from None
        if parts.scheme == "http" and not _is_loopback(host):
            raise _fail("must use https (plain http is allowed only for localhost)")
        match = _PATH.fullmatch(parts.path)
        if match is None:
            raise _fail("path must be /rest/<user_id>/<code>/ with no method name after it")
        user_id = int(match["user"])
        if user_id <= 0:
            raise _fail("user id must be a positive number")
        code = match["code"]
        if not _CODE.fullmatch(code):
            raise _fail("the webhook code may contain only letters, digits, '_' and '-'")
        SECRETS.add(code)
        return cls(parts.scheme, parts.netloc.lower(), host, port, user_id, code)

    @property
    def base(self) -> str:
        """The real base URL, secret included: for building requests only."""
        return self._base

    @property
    def masked(self) -> str:
        return self._masked

    def url_for(self, method: str) -> str:
        return f"{self._base}{method}"

    def redact(self, text: str) -> str:
        """`text` with this webhook's code replaced by `***` (for portal-supplied strings)."""
        return text.replace(self._code, MASK) if self._code in text else text

    def __str__(self) -> str:
        return self._masked

    def __repr__(self) -> str:
        return f"WebhookUrl({self._masked!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookUrl) and other._base == self._base

    def __hash__(self) -> int:
        return hash(self._base)
