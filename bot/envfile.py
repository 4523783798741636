"""`.env` read the way Docker Compose and python-dotenv read it, so both agree on one file.

python-dotenv's parser does the reading (quotes, `export`, inline `# comments`, multi-line
values); this module adds what a service needs around it: a UTF-8 byte-order mark is dropped
(Windows editors write one, and it would otherwise hide the first key), bytes that are not
UTF-8 and lines that cannot be parsed are errors with their line number — never the line's
text, which may hold a secret — and `${VAR}` references (outside single quotes) are expanded from
earlier keys and the environment.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream
from dotenv.variables import parse_variables

from bot.errors import EnvFileError


def read_env_file(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """KEY → value from `path` (a missing file is empty); `environ` feeds `${VAR}` references."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise EnvFileError(str(path), 1, "is a directory, not a file of KEY=value lines") from None
    except OSError as exc:
        raise EnvFileError(str(path), 1, f"cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise EnvFileError(
            str(path),
            line,
            f"is not UTF-8 (byte 0x{byte}); save the file as UTF-8, as Docker Compose expects",
        ) from None
    values: dict[str, str] = {}
    outside = dict(environ or {})
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original
        if binding.error:
            skipped = len(original.string) - len(original.string.lstrip("\r\n\t "))
            line = original.line + original.string[:skipped].count("\n")
            raise EnvFileError(
                str(path), line, "cannot be parsed; write KEY=value (quote values with spaces)"
            )
        if binding.key is None or binding.value is None:
            continue  # blank lines, comments, and a bare KEY (which sets nothing)
        if original.string.partition("=")[2].lstrip().startswith("'"):
            values[binding.key] = binding.value  # single quotes: literal, as in Compose
            continue
        scope = {**values, **outside}
        values[binding.key] = "".join(a.resolve(scope) for a in parse_variables(binding.value))
    return values
