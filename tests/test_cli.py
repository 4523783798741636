"""The `autojoin` command line, in process through `bot.cli.main` (and once as `python -m bot`)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import __version__
from bot.cli import main
from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS, SECRET_PROJECT
from bot.sandbox.events import APP_TOKEN, user_add
from bot.store import open_store
from tests.harness import REPO, Harness, open_harness

HEAD = "version: 1\ndefaults:\n  hide_history: false\nrules:\n"
VALID = HEAD + (
    "  - name: sales\n    departments: [2]\n    chats: [101]\n"
    "  - name: marketing\n    keywords: [join marketing]\n    chats: [103]\n"
)


pytestmark = pytest.mark.usefixtures("clean_env")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- check -----------------------------------------------------------------------------------

# (rules text, expected line, column, message fragment); the positions follow the text.
INVALID = {
    "unknown-key": (
        HEAD + "  - name: a\n    departments: [2]\n    chats: [101]\n    colour: red\n",
        8,
        5,
        "unknown key 'colour'",
    ),
    "wrong-type": (
        HEAD + "  - name: a\n    departments: [2]\n    chats: [101]\n    enabled: maybe\n",
        8,
        14,
        "rules[0].enabled: expected a boolean",
    ),
    "duplicate-rule-name": (
        HEAD + "  - name: a\n    departments: [2]\n    chats: [101]\n"
        "  - name: a\n    departments: [3]\n    chats: [102]\n",
        8,
        11,
        "duplicate rule name 'a'",
    ),
    "neither-departments-nor-keywords": (
        HEAD + "  - name: a\n    chats: [101]\n",
        5,
        5,
        "needs 'departments' or 'keywords'",
    ),
    "both-departments-and-keywords": (
        HEAD + "  - name: a\n    departments: [2]\n    keywords: [x]\n    chats: [101]\n",
        7,
        5,
        "'departments' or 'keywords', not both",
    ),
    "empty-chats": (
        HEAD + "  - name: a\n    departments: [2]\n    chats: []\n",
        7,
        12,
        "expected a non-empty list of chats",
    ),
    "missing-hide-history": (
        "version: 1\nrules:\n  - name: a\n    departments: [2]\n    chats: [101]\n",
        3,
        5,
        "'hide_history' is set neither in the rule nor in defaults",
    ),
}
POSITIONED = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_check_prints_each_error_with_its_position_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, line, col, fragment = INVALID[case]
    (tmp_path / "rules.yaml").write_text(text)
    code, out, _ = run(["check"], capsys)
    assert code == 1
    found = [m for m in map(POSITIONED.match, lines(out)) if m]
    assert found, out
    hits = [m for m in found if fragment in m["message"]]
    assert len(hits) == 1, out
    assert (hits[0]["path"], int(hits[0]["line"]), int(hits[0]["col"])) == ("rules.yaml", line, col)


def test_check_names_the_file_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "team" / "chats.yaml"
    bad.parent.mkdir()
    bad.write_text(INVALID["empty-chats"][0])
    code, out, _ = run(["check", str(bad)], capsys)
    assert code == 1
    assert lines(out)[0].startswith(f"{bad}:7:12: ")


def test_check_reads_the_path_from_autojoin_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere.yaml").write_text(INVALID["unknown-key"][0])
    (tmp_path / "rules.yaml").write_text(VALID)
    monkeypatch.setenv("AUTOJOIN_RULES", "elsewhere.yaml")
    code, out, _ = run(["check"], capsys)
    assert code == 1
    assert lines(out)[0].startswith("elsewhere.yaml:8:5: ")


def test_check_of_a_valid_file_prints_a_one_line_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    (tmp_path / "rules.yaml").chmod(0o640)  # not world-readable: no warning
    code, out, err = run(["check"], capsys)
    assert code == 0
    assert lines(out) == [
        "rules.yaml: OK: 2 rules (2 enabled; 1 department, 1 keyword) into 2 chats, 0 warning(s)"
    ]
    assert err == ""


def test_check_of_the_repository_rules_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", str(REPO / "rules.yaml")], capsys)
    assert code == 0
    assert ": OK: " in lines(out)[-1]


def test_check_of_a_missing_file_is_one_positioned_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["check", "nope.yaml"], capsys)
    assert code == 1
    assert lines(out)[0].startswith("nope.yaml:1:1: ")


# -- serve refuses to start ------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something already listens on: a serve that got as far as binding would fail
    differently (and loudly) instead of returning the configuration error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def ready_to_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    monkeypatch.setenv("B24_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("B24_WEBHOOK_URL", FakePortal().webhook_url("http://127.0.0.1:9"))


@pytest.mark.parametrize(
    ("args", "variable"),
    [
        # an events-only front with no token to check pushes by would have nothing to do
        (["serve", "--no-worker"], "B24_APP_TOKEN"),
        # pull-only serve is fine without a token, but it needs the portal
        (["serve"], "B24_WEBHOOK_URL"),
    ],
)
def test_serve_without_a_token_names_the_missing_variable_and_opens_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    busy_port: int,
    args: list[str],
    variable: str,
) -> None:
    (tmp_path / "rules.yaml").write_text(VALID)
    code, out, err = run([*args, "--port", str(busy_port)], capsys)
    assert code == 1
    assert out == ""
    assert len(lines(err)) == 1
    assert variable in err
    assert list(tmp_path.iterdir()) == [tmp_path / "rules.yaml"], "no database was created"


def test_serve_with_invalid_rules_prints_the_positioned_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    busy_port: int,
) -> None:
    ready_to_serve(tmp_path, monkeypatch)
    text = HEAD + "  - name: a\n    departments: [2]\n    chats: []\n    colour: red\n"
    (tmp_path / "rules.yaml").write_text(text)
    code, _, err = run(["serve", "--port", str(busy_port)], capsys)
    assert code == 1
    positions = sorted((m["line"], m["col"]) for m in map(POSITIONED.match, lines(err)) if m)
    assert positions == [("7", "12"), ("8", "5")], err
    assert not (tmp_path / "autojoin.db").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("B24_WEBHOOK_URL", None),
        ("B24_WEBHOOK_URL", "https://portal.example.com/rest/1/"),
        ("B24_WEBHOOK_URL", "http://portal.example.com/rest/1/abc/"),
        ("AUTOJOIN_LEASE_SECONDS", "soon"),
        ("AUTOJOIN_RETRY_CAP", "-5"),
        ("B24_RATE", "0"),
        ("AUTOJOIN_LOG_FORMAT", "xml"),
        ("AUTOJOIN_LOG_LEVEL", "LOUD"),
        ("AUTOJOIN_EVENTS_PATH", "events"),
        ("AUTOJOIN_DATABASE_URL", "mysql://db.example.com/autojoin"),
        ("AUTOJOIN_DATABASE_URL", "autojoin.db"),
    ],
)
def test_serve_with_a_missing_or_invalid_setting_names_the_variable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    busy_port: int,
    variable: str,
    value: str | None,
) -> None:
    ready_to_serve(tmp_path, monkeypatch)
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    code, out, err = run(["serve", "--port", str(busy_port)], capsys)
    assert code == 1
    assert out == ""
    assert len(lines(err)) == 1, err
    assert err.startswith(f"autojoin: {variable}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.yaml"]


def test_a_setting_from_dotenv_is_used_and_the_environment_wins(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    busy_port: int,
) -> None:
    ready_to_serve(tmp_path, monkeypatch)
    (tmp_path / ".env").write_text("AUTOJOIN_LEASE_SECONDS=later\nAUTOJOIN_RETRY_CAP=oops\n")
    monkeypatch.setenv("AUTOJOIN_RETRY_CAP", "60")
    code, _, err = run(["serve", "--port", str(busy_port)], capsys)
    assert code == 1
    assert err.startswith("autojoin: AUTOJOIN_LEASE_SECONDS: ")


# -- check and demo need no Bitrix24 settings --------------------------------------------------


def test_check_needs_no_b24_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not [name for name in os.environ if name.startswith("B24_")]
    (tmp_path / "rules.yaml").write_text(VALID)
    assert run(["check"], capsys)[0] == 0


def test_demo_runs_without_settings_and_tells_the_whole_story(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["demo"], capsys)
    assert code == 0
    assert all(f"[{n}/8]" in out for n in range(1, 9))
    lines = out.splitlines()

    def line(*parts: str) -> str:
        found = [x for x in lines if all(p in x for p in parts)]
        assert found, parts
        return found[0]

    assert "new hire accepted (1 job(s))" in line("user.get >ID (hire poll)")
    assert "history visible" in line("+ added", "Mia (20)", "Sales all-hands (101)")
    assert "history hidden" in line("+ added", "Mia (20)", "EMEA deals (102)")
    assert "200 duplicate" in out
    assert "Welcome, Boris!" in line("bot replies")
    assert "not open to you" in out
    assert line("- removed", "Dieter (4)", "EMEA deals (102)")
    assert line("+ added", "Dieter (4)", "Backend guild (105)")
    assert line("+ 10 Jonas Jung")
    assert "nothing applied" in out


def test_python_m_bot_version_works_as_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"autojoin {__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# -- operator commands over a database the harness filled ------------------------------------


async def fill(tmp_path: Path) -> Harness:
    """Two hires into 101 (fine) and 107 (the webhook user is not a member: dead)."""
    (tmp_path / "rules.yaml").write_text(
        HEAD + f"  - name: sales\n    departments: [4]\n    chats: [{SALES_ALL_HANDS}]\n"
        f"  - name: secret\n    departments: [4]\n    chats: [{SECRET_PROJECT}]\n"
    )
    async with open_harness(tmp_path) as h:
        for user_id in (40, 41):
            user = h.portal.upsert_user(user_id, name=f"U{user_id}", departments=[4])
            assert (await h.post(user_add(user, token=APP_TOKEN))).status_code == 200
        await h.drain()
    return h


def use_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'autojoin.db'}"
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", url)
    return url


def rows(out: str) -> list[list[str]]:
    """Table rows below the header (and above a totals line)."""
    return [line.split() for line in lines(out)[1:] if not line.startswith("totals:")]


@pytest.mark.anyio
async def test_jobs_lists_open_and_dead_work_and_all_with_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(tmp_path)
    url = use_database(tmp_path, monkeypatch)
    code, out, _ = run(["jobs"], capsys)
    assert code == 0
    dead = rows(out)
    assert [(r[1], r[2]) for r in dead] == [("dead", "chat.add")] * 2
    assert all("[ACCESS_DENIED_EXTEND]" in " ".join(r) for r in dead)
    assert {" ".join(r).split("user_id=")[1].split()[0] for r in dead} == {"40", "41"}
    store = open_store(url)
    try:
        counts = store.counts()
    finally:
        store.close()
    assert lines(out)[-1] == "totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    code, out, _ = run(["jobs", "--all"], capsys)
    assert len(rows(out)) == sum(counts.values())
    code, out, _ = run(["jobs", "--all", "-n", "3"], capsys)
    assert len(rows(out)) == 3


@pytest.mark.anyio
async def test_jobs_shows_a_paused_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_harness(tmp_path) as h:
        user = h.portal.upsert_user(42, name="U42", departments=[4])
        await h.post(user_add(user, token=APP_TOKEN))
        h.portal.revoke_webhook()
        assert h.services.worker is not None
        await h.services.worker.run_until_idle()
    use_database(tmp_path, monkeypatch)
    code, out, _ = run(["jobs"], capsys)
    assert code == 0
    assert lines(out)[0].startswith("QUEUE PAUSED since ")
    assert "INVALID_CREDENTIALS" in lines(out)[0]


@pytest.mark.anyio
async def test_retry_revives_named_dead_jobs_or_all_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(tmp_path)
    url = use_database(tmp_path, monkeypatch)
    store = open_store(url)
    try:
        first, second = sorted(j.id for j in store.jobs(("dead",)))
        code, out, _ = run(["retry", str(first)], capsys)
        assert (code, out.strip()) == (0, "1 job(s) queued again")
        assert [j.id for j in store.jobs(("dead",))] == [second]
        revived = next(j for j in store.jobs(("pending",)) if j.id == first)
        assert (revived.attempts, revived.last_code) == (0, None)
        code, out, err = run(["retry", str(first)], capsys)
        assert (code, out) == (1, ""), "a pending job is not revived twice, and that is no success"
        assert f"no dead job with ID {first}" in err
        code, out, _ = run(["retry", "--dead"], capsys)
        assert (code, out.strip()) == (0, "1 job(s) queued again")
        assert store.jobs(("dead",)) == []
        code, out, _ = run(["retry", "--dead"], capsys)
        assert (code, out.strip()) == (0, "no dead jobs: nothing to queue again")
    finally:
        store.close()
    code, _, err = run(["retry"], capsys)
    assert code == 2
    assert "--dead" in err


@pytest.mark.anyio
async def test_history_filters_by_user_and_chat_and_limits_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(tmp_path)
    use_database(tmp_path, monkeypatch)
    code, out, _ = run(["history"], capsys)
    assert code == 0
    everything = rows(out)
    # TIME is two cells (date and time): outcome, chat, user follow
    assert sorted((r[2], r[3], r[4]) for r in everything) == sorted(
        (outcome, str(chat), str(user))
        for user in (40, 41)
        for outcome, chat in (("added", SALES_ALL_HANDS), ("dead", SECRET_PROJECT))
    )
    _, out, _ = run(["history", "--user", "41"], capsys)
    assert {r[4] for r in rows(out)} == {"41"}
    assert len(rows(out)) == 2
    _, out, _ = run(["history", "--chat", str(SECRET_PROJECT)], capsys)
    assert {(r[2], r[3]) for r in rows(out)} == {("dead", str(SECRET_PROJECT))}
    assert all("[ACCESS_DENIED_EXTEND]" in " ".join(r) for r in rows(out))
    _, out, _ = run(["history", "--user", "40", "--chat", str(SALES_ALL_HANDS)], capsys)
    assert [(r[2], r[3], r[4]) for r in rows(out)] == [("added", str(SALES_ALL_HANDS), "40")]
    _, out, _ = run(["history", "-n", "1"], capsys)
    assert len(rows(out)) == 1


@pytest.mark.anyio
async def test_prune_deletes_only_what_is_older_than_the_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness's clock stands years before today, so its rows are old to `prune`."""
    await fill(tmp_path)
    url = use_database(tmp_path, monkeypatch)
    keep = ["--jobs-days", "100000", "--events-days", "100000", "--audit-days", "100000"]
    code, out, _ = run(["prune", *keep], capsys)
    assert (code, out.strip()) == (0, "pruned: audit 0, dedupe_keys 0, events 0, jobs 0")
    store = open_store(url)
    try:
        before = store.counts()
        audit = len(store.history(limit=1000))
    finally:
        store.close()
    code, out, _ = run(["prune"], capsys)
    assert code == 0
    assert f"jobs {before['done']}" in out
    assert f"audit {audit}" in out
    store = open_store(url)
    try:
        after = store.counts()
    finally:
        store.close()
    assert after == before | {"done": 0}, "dead jobs are kept, done ones pruned"


def test_departments_prints_the_portal_tree_with_ids(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = FakePortal()
    with portal.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url(base))
        code, out, _ = run(["departments"], capsys)
    assert code == 0
    shown = {}
    for line in lines(out):
        match = re.match(r"^(?P<indent> *)(?P<id>\d+)  (?P<name>.+)$", line)
        assert match, line
        shown[int(match["id"])] = (len(match["indent"]), match["name"])
    departments = portal.state.departments
    assert {d: name for d, (_, name) in shown.items()} == {
        d.id: d.name for d in departments.values()
    }
    for dept in departments.values():
        if dept.parent is not None:
            assert shown[dept.id][0] > shown[dept.parent][0], f"{dept.name} under its parent"
    assert len(portal.calls_to("department.get")) >= 1


def test_departments_without_a_webhook_names_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(["departments"], capsys)
    assert code == 1
    assert err.startswith("autojoin: B24_WEBHOOK_URL: ")


def test_check_warns_when_env_is_world_readable_but_not_about_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """rules.yaml holds no secret; .env holds the webhook code and tokens."""
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text((REPO / "rules.yaml").read_text("utf-8"), "utf-8")
    env = tmp_path / ".env"
    env.write_text("B24_APP_TOKEN=x\n")
    rules.chmod(0o644)
    env.chmod(0o604)
    assert main(["check", str(rules)]) == 0
    out = capsys.readouterr().out
    assert str(rules) + ":1:1" not in out
    assert (
        ".env:1:1: warning: Every user of this machine can read .env, which holds the webhook "
        "code and the tokens (mode 604); make it private with: chmod 600 .env"
    ) in out
    env.chmod(0o600)
    assert main(["check", str(rules)]) == 0
    assert "can read" not in capsys.readouterr().out
