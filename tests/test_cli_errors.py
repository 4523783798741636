"""Operator mistakes end in one line on stderr that names the problem and the fix, exit 1.

Each case is run through `bot.cli.main` as an operator would meet it; none may print a
traceback, and each must name what to change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main

VALID = (
    "version: 1\ndefaults:\n  hide_history: false\nrules:\n"
    "  - name: sales\n    departments: [2]\n    chats: [101]\n"
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("B24_", "AUTOJOIN_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def fails_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], *words: str, code: int = 1
) -> str:
    """Run the command; assert the exit status, one stderr line, no traceback, the words."""
    status = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- .env ----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["check"], ["jobs"], ["serve"], ["plan"]])
def test_a_dotenv_that_is_not_utf8_is_one_line_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    (tmp_path / ".env").write_bytes("# ключ портала\nB24_RATE=2\n".encode("cp1251"))
    fails_in_one_line(argv, capsys, ".env:1:", "not UTF-8", "save the file as UTF-8")
    assert not (tmp_path / "autojoin.db").exists()


def test_a_dotenv_line_that_cannot_be_parsed_is_one_line_with_its_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    (tmp_path / ".env").write_text("B24_RATE=2\nB24_APP_TOKEN tok-secret\n")
    line = fails_in_one_line(["check"], capsys, ".env:2:", "KEY=value")
    assert "tok-secret" not in line
