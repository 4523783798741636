"""Operator mistakes end in one line on stderr that names the problem and the fix, exit 1.

Each case is run through `bot.cli.main` as an operator would meet it; none may print a
traceback, and each must name what to change.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.sandbox import FakePortal
from bot.sandbox.company import sample_company
from bot.store import open_store
from bot.store.schema import LATEST

VALID = (
    "version: 1\ndefaults:\n  hide_history: false\nrules:\n"
    "  - name: sales\n    departments: [2]\n    chats: [101]\n"
)


pytestmark = pytest.mark.usefixtures("clean_env")


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


# -- settings: each command asks only for what it needs, all at once ---------------------


def test_serve_with_nothing_configured_names_every_missing_setting_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a push token `serve` runs pull-only, so the token is not missing; the rest is."""
    line = fails_in_one_line(["serve"], capsys, "B24_WEBHOOK_URL", "AUTOJOIN_RULES", "rules.yaml")
    assert "not found" in line
    assert "B24_APP_TOKEN" not in line
    assert list(tmp_path.iterdir()) == [], "nothing was created"


def test_a_front_without_a_worker_needs_a_token_and_says_so_with_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fails_in_one_line(["serve", "--no-worker"], capsys, "B24_APP_TOKEN", "AUTOJOIN_RULES")
    assert list(tmp_path.iterdir()) == [], "nothing was created"


def test_a_rules_path_that_is_a_directory_is_named_with_its_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules").mkdir()
    monkeypatch.setenv("AUTOJOIN_RULES", "rules")
    monkeypatch.setenv("B24_APP_TOKEN", "tok")
    fails_in_one_line(
        ["serve", "--no-worker"], capsys, "AUTOJOIN_RULES", "is a directory", "mounted file"
    )


def test_worker_never_asks_for_the_events_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = fails_in_one_line(["worker"], capsys, "B24_WEBHOOK_URL", "AUTOJOIN_RULES")
    assert "B24_APP_TOKEN" not in line


def test_a_worker_is_built_without_any_token(tmp_path: Path) -> None:
    import anyio

    import handlers
    from bot.settings import Settings
    from bot.wiring import build_services

    (tmp_path / "rules.yaml").write_text(VALID)
    settings = Settings.load(
        {
            "B24_WEBHOOK_URL": "http://127.0.0.1:9/rest/1/code/",
            "AUTOJOIN_RULES": str(tmp_path / "rules.yaml"),
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        },
        env_file=tmp_path / "absent",
    )
    services = build_services(settings, router=handlers.router, accept_events=False)
    try:
        assert services.worker is not None
        assert services.verifier.tokens == ()
    finally:
        if services.http is not None:
            anyio.run(services.http.aclose)
        anyio.run(services.store.close)


def test_register_bot_names_every_missing_setting_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fails_in_one_line(
        ["register-bot"], capsys, "B24_WEBHOOK_URL", "B24_BOT_CLIENT_ID", "AUTOJOIN_PUBLIC_URL"
    )


def test_plan_names_the_webhook_and_the_rules_variable_together(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fails_in_one_line(["plan"], capsys, "B24_WEBHOOK_URL", "AUTOJOIN_RULES")


# -- serve and demo --keep: the port and host --------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def ready_to_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    monkeypatch.setenv("B24_APP_TOKEN", "tok")
    monkeypatch.setenv("B24_WEBHOOK_URL", "http://127.0.0.1:9/rest/1/code/")


def test_serve_on_a_taken_port_is_one_line_and_opens_no_database(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    busy_port: int,
) -> None:
    ready_to_serve(tmp_path, monkeypatch)
    fails_in_one_line(
        ["serve", "--port", str(busy_port)], capsys, f"port {busy_port}", "in use", "--port"
    )
    assert not (tmp_path / "autojoin.db").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--port", "70000"], ("--port 70000", "out of range", "1 to 65535")),
        (["--port", "0"], ("--port 0", "out of range")),
        (["--host", "192.0.2.1"], ("--host 192.0.2.1", "not an address of this machine")),
        (["--host", "no such host!"], ("--host no such host!", "127.0.0.1", "0.0.0.0")),
        (["--metrics-port", "8000"], ("--metrics-port", "differ from --port")),
        (["--no-worker", "--inline-worker"], ("--no-worker", "--inline-worker", "choose one")),
    ],
)
def test_serve_with_a_host_or_port_it_cannot_use_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    words: tuple[str, ...],
) -> None:
    ready_to_serve(tmp_path, monkeypatch)
    fails_in_one_line(["serve", *argv], capsys, *words)
    assert not (tmp_path / "autojoin.db").exists()


def test_serve_with_a_taken_metrics_port_names_that_option(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    busy_port: int,
) -> None:
    ready_to_serve(tmp_path, monkeypatch)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    argv = ["serve", "--port", str(port), "--metrics-port", str(busy_port)]
    fails_in_one_line(argv, capsys, "in use", "--metrics-port")


def test_demo_keep_on_a_taken_port_fails_before_the_story(
    capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    status = main(["demo", "--keep", "--port", str(busy_port)])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == "", "no story, no curl for a port we cannot serve"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"port {busy_port}" in lines[0]
    assert "--port" in lines[0]


# -- the database: read-only commands never create one ----------------------------------


@pytest.mark.parametrize(
    "argv", [["jobs"], ["history"], ["history", "--user", "4"], ["retry", "1"], ["prune"]]
)
def test_commands_over_the_database_never_create_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # (the path itself may show as *** when another test made the same string a secret)
    fails_in_one_line(argv, capsys, "no database at ", "AUTOJOIN_DATABASE_URL", "`serve`")
    assert list(tmp_path.iterdir()) == []


def test_explain_without_a_database_says_so_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = FakePortal(sample_company())
    (tmp_path / "rules.yaml").write_text(VALID)
    with portal.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url(base))
        status = main(["explain", "--user", "2"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.startswith("User 2 ")
    assert "note: no database at " in err
    assert not (tmp_path / "autojoin.db").exists()


def test_explain_of_a_user_the_portal_does_not_know_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = FakePortal(sample_company())
    (tmp_path / "rules.yaml").write_text(VALID)
    with portal.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url(base))
        fails_in_one_line(["explain", "--user", "999"], capsys, "user 999 does not exist")
    assert capsys.readouterr().out == ""


def test_retry_of_a_job_that_does_not_exist_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store("sqlite:///autojoin.db").close()
    fails_in_one_line(["retry", "12345"], capsys, "no dead job with ID 12345", "autojoin jobs")


def test_a_database_in_a_directory_that_cannot_exist_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").write_text("a file where a directory should be")
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", f"sqlite:///{tmp_path}/data/autojoin.db")
    (tmp_path / "rules.yaml").write_text(VALID)
    monkeypatch.setenv("B24_APP_TOKEN", "tok")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    fails_in_one_line(
        ["serve", "--no-worker", "--port", str(port)],
        capsys,
        "cannot create the SQLite database",
        "AUTOJOIN_DATABASE_URL",
    )


def test_a_postgres_url_with_a_bad_parameter_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", "postgresql://127.0.0.1/test?sslmod=require")
    fails_in_one_line(["jobs"], capsys, "sslmod", "?schema=name", "AUTOJOIN_DATABASE_URL")


def test_migrations_log_what_they_did(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.INFO, logger="autojoin.store"):
        open_store(f"sqlite:///{tmp_path / 'm.db'}").close()
        open_store(f"sqlite:///{tmp_path / 'm.db'}").close()
    said = [r.getMessage() for r in caplog.records if r.name == "autojoin.store"]
    assert said == [f"database schema created (version {LATEST})"]


# -- the portal: which host, what to do, and progress while retrying ----------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_portal_is_one_line_naming_the_host_and_the_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("B24_WEBHOOK_URL", f"http://127.0.0.1:{port}/rest/1/hooksecret/")
    line = fails_in_one_line(
        ["departments"], capsys, f"127.0.0.1:{port}", "NETWORK_ERROR", "B24_WEBHOOK_URL"
    )
    assert "hooksecret" not in line
    assert "retried automatically" not in line, "a command that gave up does not retry"


def test_a_rest_error_gets_the_same_hint_as_healthz(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = FakePortal(sample_company())
    portal.revoke_webhook()
    with portal.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url(base))
        fails_in_one_line(["departments"], capsys, "INVALID_CREDENTIALS", "update B24_WEBHOOK_URL")


@pytest.mark.anyio
async def test_plan_against_an_unreachable_portal_shows_progress_while_retrying(
    tmp_path: Path,
) -> None:
    """Between the tries the operator sees which host failed and when the next try is."""
    import io

    import httpx

    from bot.commands.plan import run_plan
    from bot.errors import PortalRetryable
    from bot.reconcile.session import Runtime
    from bot.settings import Settings
    from tests.fakes import FakeClock

    (tmp_path / "rules.yaml").write_text(VALID)
    port = closed_port()
    settings = Settings.load(
        {
            "B24_WEBHOOK_URL": f"http://127.0.0.1:{port}/rest/1/code/",
            "AUTOJOIN_RULES": str(tmp_path / "rules.yaml"),
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        },
        env_file=tmp_path / "absent",
    )
    clock = FakeClock()
    err = io.StringIO()
    runtime = Runtime(
        settings, clock=clock, sleep=clock.sleep, transport=httpx.AsyncHTTPTransport(), err=err
    )
    args = build_parser().parse_args(["plan"])
    with pytest.raises(PortalRetryable):
        await run_plan(args, runtime)
    notes = [line for line in err.getvalue().splitlines() if "retry" in line]
    assert len(notes) == 4, err.getvalue()
    assert all(f"127.0.0.1:{port}" in line for line in notes)
    assert notes[0].endswith("retry 1 of 4 in 1 s")
    assert not (tmp_path / "p.db").exists(), "plan creates no database"


# -- check -------------------------------------------------------------------------------


def test_check_explains_a_quoted_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID.replace("version: 1", 'version: "1"'))
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "rules.yaml:1:10: version: expected 1, got the string '1'; write it without quotes" in (
        out
    )


def test_check_portal_says_ok_only_after_the_portal_and_not_when_it_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    portal = FakePortal(sample_company())
    with portal.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url(base))
        assert main(["check", "--portal"]) == 0
        good = capsys.readouterr().out.splitlines()
        assert [line for line in good if "OK" in line] == [good[-1]]
        assert ": portal: OK: " in good[-1]
        portal.revoke_webhook()
        status = main(["check", "--portal"])
    captured = capsys.readouterr()
    assert status == 1
    assert "OK" not in captured.out, "the file was fine, but the check as a whole was not"
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "INVALID_CREDENTIALS" in lines[0]
    assert "Traceback" not in captured.err


def test_check_portal_without_a_webhook_prints_nothing_half_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    fails_in_one_line(["check", "--portal"], capsys, "B24_WEBHOOK_URL")
    assert capsys.readouterr().out == ""


def test_demo_hints_name_the_autojoin_this_shell_can_run(tmp_path: Path) -> None:
    from bot.demo.live import invoked_as

    fake = tmp_path / ".venv" / "bin" / "autojoin"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    assert invoked_as(".venv/bin/autojoin") == ".venv/bin/autojoin"  # not on PATH here
    assert invoked_as("/usr/lib/python3/bot/__main__.py").endswith(" -m bot")
