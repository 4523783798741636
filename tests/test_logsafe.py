from __future__ import annotations

import io
import json
import logging

from bot.logsafe import TEXT_FORMAT, JsonFormatter, MaskSecrets, SecretRegistry, TextFormatter


def make_logger(
    registry: SecretRegistry, formatter: logging.Formatter | None = None
) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskSecrets(registry))
    if formatter:
        handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.logsafe.{id(registry)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_messages_arguments_and_tracebacks_are_masked() -> None:
    registry = SecretRegistry()
    registry.add("canary-webhook-code", "canary-token", None, "ab")
    logger, stream = make_logger(registry)
    logger.info("POST https://p/rest/1/%s/im.chat.user.add", "canary-webhook-code")
    try:
        raise RuntimeError("token canary-token leaked")
    except RuntimeError:
        logger.exception("failed")
    logger.warning("stack", stack_info=True)
    out = stream.getvalue()
    assert "canary" not in out
    assert out.count("***") >= 2
    assert "RuntimeError" in out


def test_short_strings_are_not_treated_as_secrets() -> None:
    registry = SecretRegistry()
    registry.add("ab")
    assert registry.mask("abc") == "abc"


def test_json_format_is_one_object_per_line_and_masked() -> None:
    registry = SecretRegistry()
    registry.add("canary-json")
    logger, stream = make_logger(registry, JsonFormatter())
    logger.info("value %s", "canary-json", extra={"event_id": "e1"})
    line = json.loads(stream.getvalue())
    assert line["msg"] == "value ***"
    assert line["event_id"] == "e1"
    assert line["level"] == "info"


def test_text_format_prints_what_the_plain_formatter_prints() -> None:
    """The per-second date cache changes no byte, also across a second boundary."""
    plain = logging.Formatter(TEXT_FORMAT)
    cached = TextFormatter()
    for created in (1764883910.179, 1764883910.9995, 1764883911.0004, 1764883975.5):
        record = logging.LogRecord("autojoin.web", logging.INFO, "f", 1, "event %s", ("e",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        record.event_id = "abc"
        assert cached.format(record) == plain.format(record)
    with_datefmt = logging.LogRecord("a", logging.INFO, "f", 1, "m", None, None)
    assert cached.formatTime(with_datefmt, "%Y") == plain.formatTime(with_datefmt, "%Y")
