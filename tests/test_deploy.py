"""The deployable image: Dockerfile, docker-compose.yml, .env.example and the lock file.

There is no Docker engine in CI; these read the files as Docker and Compose would and assert
what a first deployment depends on. hadolint checks the Dockerfile itself (scripts/test).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.envfile import read_env_file
from bot.settings import Settings
from tests.harness import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text("utf-8"))
DOCKERFILE = (REPO / "Dockerfile").read_text("utf-8")
APP_SERVICES = ("web", "worker")


def instructions(name: str) -> list[str]:
    """Every Dockerfile instruction of one kind, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_no_password_is_written_in_the_compose_file() -> None:
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            if "PASSWORD" in key:
                assert text.startswith("${"), (name, key)
                assert text.endswith("}"), (name, key)
            for password in re.findall(r"://[^:/@]+:([^@]+)@", text):
                assert password.startswith("${"), (name, key, "a literal password in a URL")
        assert "autojoin:autojoin@" not in str(service)


def test_rules_are_mounted_as_a_directory_read_only() -> None:
    for name in APP_SERVICES:
        service = COMPOSE["services"][name]
        rules = service["environment"]["AUTOJOIN_RULES"]
        mounts = [m for m in service["volumes"] if m.split(":")[1] == str(Path(rules).parent)]
        assert mounts, f"{name}: the directory of {rules} is mounted"
        source, _, mode = mounts[0].split(":")
        assert not source.endswith((".yaml", ".yml")), "a directory, not a single file"
        assert mode == "ro"


def test_every_long_running_service_restarts() -> None:
    for name, service in COMPOSE["services"].items():
        assert service.get("restart") in {"unless-stopped", "always"}, name


def test_the_image_carries_no_sample_rules() -> None:
    copied = " ".join(instructions("COPY"))
    assert "rules.yaml" not in copied
    assert ".yaml" not in copied
    rules = next(e for e in instructions("ENV") if "AUTOJOIN_RULES=" in e)
    assert "AUTOJOIN_RULES=/rules/rules.yaml" in rules
    for name in APP_SERVICES:
        for mount in COMPOSE["services"][name].get("volumes", []):
            assert not mount.startswith("./rules.yaml"), "the repository's sample is not mounted"


def test_the_image_installs_the_locked_versions() -> None:
    [install] = [r for r in instructions("RUN") if "pip install" in r]
    assert "-c constraints.txt" in install
    assert "constraints.txt" in " ".join(instructions("COPY"))
    pinned = [
        line
        for line in (REPO / "constraints.txt").read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert pinned
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[^=\s]+", line) for line in pinned)
    names = {line.split("==")[0].lower().replace("_", "-") for line in pinned}
    assert {"starlette", "uvicorn", "httpx", "pyyaml", "psycopg", "python-dotenv"} <= names


def test_the_https_proxy_example_points_at_web() -> None:
    caddy = COMPOSE["services"]["caddy"]
    assert caddy["profiles"] == ["https"]
    mounted = caddy["volumes"][0].split(":")[0]
    text = (REPO / mounted).read_text("utf-8")
    assert "reverse_proxy web:8000" in text


def settings_read() -> set[str]:
    """Every variable bot/settings.py reads (each as a string literal in the source)."""
    source = Path(Settings.__module__.replace(".", "/") + ".py")
    text = (REPO / source).read_text("utf-8")
    return set(re.findall(r'"((?:B24|AUTOJOIN)_[A-Z_]+)"', text))


def test_env_example_lists_every_setting_the_code_reads() -> None:
    text = (REPO / ".env.example").read_text("utf-8")
    listed = set(re.findall(r"^#? ?((?:B24|AUTOJOIN)_[A-Z_]+)=", text, re.MULTILINE))
    read = settings_read()
    assert len(read) >= 25
    assert read - listed == set(), "missing from .env.example"
    assert listed - read <= {"AUTOJOIN_DOMAIN"}, "listed but read by nothing"


def test_env_example_parses_and_shows_the_real_defaults(tmp_path: Path) -> None:
    example = REPO / ".env.example"
    assert read_env_file(example)  # the parser autojoin and Compose share accepts it
    uncommented = tmp_path / ".env"
    uncommented.write_text(
        re.sub(r"^# ((?:B24|AUTOJOIN)_[A-Z_]+=)", r"\1", example.read_text("utf-8"), flags=re.M)
    )
    assert Settings.load({}, env_file=uncommented) == Settings.load({}, env_file=tmp_path / "no")
