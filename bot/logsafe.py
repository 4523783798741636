"""Keep secrets out of every log line, including other libraries' (httpx logs request URLs).

A filter on the root handler renders each record, masks every registered secret in the
message, the traceback and the stack, and hands the handler a record with nothing left
to interpolate. Filters on handlers run for records propagated from any logger.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Final

MASK: Final = "***"
_MIN_SECRET_LENGTH: Final = 4


class SecretRegistry:
    """The set of strings that must never be printed; longest first so overlaps mask fully."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            known = set(self._secrets)
            known.update(s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH)
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._secrets = ()

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        return f"<SecretRegistry {len(self._secrets)} secrets>"


SECRETS: Final = SecretRegistry()


class MaskSecrets(logging.Filter):
    """Render and mask the record in place; never drops a record."""

    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = self.registry.mask(message)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.registry.mask(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.registry.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.registry.mask(record.stack_info)
        for key in ("event_id", "job_id"):
            value = record.__dict__.get(key)
            if isinstance(value, str):
                record.__dict__[key] = self.registry.mask(value)
        ids = record.__dict__.get("event_ids")
        if isinstance(ids, list):
            record.__dict__["event_ids"] = [self.registry.mask(str(i)) for i in ids]
        record.__dict__.setdefault("event_id", "-")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log shippers; fields stay few and stable."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("event_id", "job_id"):
            if record.__dict__.get(key, "-") != "-":
                payload[key] = record.__dict__[key]
        ids = record.__dict__.get("event_ids")
        if ids:
            payload["event_ids"] = ids  # one line for a group of events accepted together
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(event_id)s] %(message)s"


class TextFormatter(logging.Formatter):
    """The text format; the date part of `asctime` is rendered once per second, not per line
    (one line per accepted event makes `strftime` a visible cost). Same text as the default."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._date = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._date = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = second
        return f"{self._date},{int(record.msecs):03d}"


def configure_logging(level: str = "INFO", fmt: str = "text") -> logging.Handler:
    """Install one masked stderr handler on the root logger (replacing earlier ones of ours)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_autojoin", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._autojoin = True  # type: ignore[attr-defined]
    handler.addFilter(MaskSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    # Neither format prints the caller, thread or process: don't collect them for every record
    # (the logging HOWTO's "Optimization" switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
