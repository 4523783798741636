"""`.env` is read as Docker Compose reads it: python-dotenv's grammar, plus BOM, encoding and
bad-line errors that name the line and never its text."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.envfile import read_env_file
from bot.errors import EnvFileError
from bot.settings import Settings


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / ".env"
    path.write_bytes(data)
    return path


def test_a_utf8_byte_order_mark_does_not_hide_the_first_key(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffB24_RATE=5\nB24_BURST=250\n".encode())
    assert read_env_file(path) == {"B24_RATE": "5", "B24_BURST": "250"}


def test_an_inline_comment_is_not_part_of_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, b"AUTOJOIN_LOG_LEVEL=DEBUG # noisy\nAUTOJOIN_BOT_NAME=a#b\n")
    assert read_env_file(path) == {"AUTOJOIN_LOG_LEVEL": "DEBUG", "AUTOJOIN_BOT_NAME": "a#b"}


def test_quotes_are_removed_and_keep_what_is_inside(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        b"A=\"two words # not a comment\"\nB='single'\nC=\"line\\nbreak\"\nD=''\n",
    )
    assert read_env_file(path) == {
        "A": "two words # not a comment",
        "B": "single",
        "C": "line\nbreak",
        "D": "",
    }


def test_export_prefixes_and_blank_and_comment_lines_are_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, b"# settings\n\nexport B24_RATE=5\n   \nexport  B24_BURST=9\n")
    assert read_env_file(path) == {"B24_RATE": "5", "B24_BURST": "9"}


def test_references_expand_from_earlier_keys_and_the_environment_but_not_in_single_quotes(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, b"HOST=db\nURL=postgresql://${USER_FROM_ENV}@${HOST}/x\nRAW='${HOST}'\n")
    values = read_env_file(path, {"USER_FROM_ENV": "autojoin"})
    assert values["URL"] == "postgresql://autojoin@db/x"
    assert values["RAW"] == "${HOST}"


def test_a_cp1251_file_is_one_error_naming_the_line_and_the_fix(tmp_path: Path) -> None:
    text = "B24_RATE=2\n# комментарий по-русски\nB24_BURST=50\n"
    path = write(tmp_path, text.encode("cp1251"))
    with pytest.raises(EnvFileError) as info:
        read_env_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    assert "not UTF-8" in message
    assert "save the file as UTF-8" in message
    assert "\n" not in message


def test_a_line_that_cannot_be_parsed_is_named_by_number_without_its_text(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, b"B24_RATE=2\n\n\nB24_WEBHOOK_URL https://p/rest/1/hooksecret/\n")
    with pytest.raises(EnvFileError) as info:
        read_env_file(path)
    assert info.value.line == 4
    assert str(info.value).startswith(f"{path}:4: cannot be parsed; write KEY=value")
    assert "hooksecret" not in str(info.value)


def test_a_missing_file_is_empty_and_a_directory_is_an_error(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / "absent") == {}
    with pytest.raises(EnvFileError, match="is a directory"):
        read_env_file(tmp_path)


def test_settings_read_the_file_through_the_same_parser(tmp_path: Path) -> None:
    path = write(tmp_path, '\ufeffAUTOJOIN_RULES="my rules.yaml" # the team\'s\n'.encode())
    settings = Settings.load({}, env_file=path)
    assert settings.rules_path == Path("my rules.yaml")
