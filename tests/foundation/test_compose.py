"""docker-compose.yml runs the whole service: each fraudring service's command is a real
subcommand with valid options, every variable it sets is a setting that loads, secrets have no
defaults, and the services wait for healthy servers. Validated by `docker compose config` where
the Compose plugin exists, by parsing the YAML otherwise (no Docker engine is needed either way)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from fraudring.cli import app
from fraudring.settings import DEV_API_KEY_HASH, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"neo4j", "redis", "api", "worker", "beat"}
FRAUDRING = ("api", "worker", "beat")
SECRETS = {
    "NEO4J_PASSWORD": "a-test-password-1",
    "FRAUDRING_API_KEYS": '{"%s": "score"}' % ("a" * 64),
}


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode == 0


def _config(env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Docker Compose resolves it (interpolated, anchors merged)."""
    done = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _interpolate(value: str) -> str:
    """`${VAR:?msg}` / `${VAR:-default}` / `${VAR}` as Compose does, from SECRETS only."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in SECRETS:
            return SECRETS[name]
        assert op != ":?", f"required variable {name} has no test value"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:\?|:-)?([^}]*)\}", sub, value)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if _compose_plugin():
        return _config(SECRETS)
    raw: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for svc in raw["services"].values():
        env = svc.get("environment") or {}
        svc["environment"] = {k: _interpolate(str(v)) for k, v in env.items()}
    return raw


def test_compose_runs_the_five_services(spec: dict[str, Any]) -> None:
    assert set(spec["services"]) == SERVICES
    images = {spec["services"][s].get("image") for s in FRAUDRING}
    assert len(images) == 1, "api, worker and beat run one image"
    assert any("build" in spec["services"][s] for s in FRAUDRING)


@pytest.mark.parametrize("name", FRAUDRING)
def test_each_command_is_a_real_subcommand_with_valid_options(
    spec: dict[str, Any], name: str
) -> None:
    command = spec["services"][name]["command"]
    assert command[0] == "fraudring"
    group = typer.main.get_command(app)
    sub = getattr(group, "commands", {}).get(command[1])
    assert sub is not None, f"{name}: `fraudring {command[1]}` is no subcommand"
    sub.make_context(command[1], list(command[2:]))  # raises on an unknown option or bad value


@pytest.mark.parametrize("name", FRAUDRING)
def test_every_variable_is_a_setting_and_they_load_in_prod(
    spec: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env: dict[str, str] = spec["services"][name]["environment"]
    known = set()
    for field, info in Settings.model_fields.items():
        known.add(f"FRAUDRING_{field.upper()}")
        choices = getattr(info.validation_alias, "choices", [])
        known.update(str(c) for c in choices)
    assert set(env) <= known, f"{name}: not settings: {sorted(set(env) - known)}"
    monkeypatch.chdir(tmp_path)  # no .env file
    for key in [k for k in os.environ if k.startswith("FRAUDRING_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()  # as the container reads them
    assert settings.env == "prod" and DEV_API_KEY_HASH not in settings.api_keys
    assert settings.graph_url == "bolt://neo4j:7687"
    assert settings.redis_url is not None and "redis:6379" in settings.redis_url


def test_secrets_have_no_defaults() -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in FRAUDRING:
        env = raw["services"][name]["environment"]
        for key in ("FRAUDRING_GRAPH_PASSWORD", "FRAUDRING_API_KEYS"):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", env[key]), f"{name}.{key}: {env[key]}"
    assert ":?" in raw["services"]["neo4j"]["environment"]["NEO4J_AUTH"]
    if _compose_plugin():  # and Compose refuses to start without them
        done = subprocess.run(
            ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
            capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert done.returncode != 0 and "NEO4J_PASSWORD" in done.stderr


def test_services_wait_for_healthy_servers_and_the_api_reports_readiness(
    spec: dict[str, Any],
) -> None:
    services = spec["services"]
    for name in FRAUDRING:
        deps = services[name]["depends_on"]
        for server in ("neo4j", "redis"):
            assert deps[server]["condition"] == "service_healthy", f"{name} -> {server}"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["worker"]["healthcheck"]["test"])
    for name in ("neo4j", "redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name


def test_healthchecks_read_only_variables_their_container_has() -> None:
    """A healthcheck's `$${VAR}` is expanded by the container's shell, from the container's own
    environment, not from the host's: an unset one leaves the server unhealthy forever and
    nothing that depends on it starts."""
    raw: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, svc in raw["services"].items():
        test = " ".join(svc.get("healthcheck", {}).get("test", []))
        env = set(svc.get("environment") or {}) | {"HOSTNAME", "HOME", "PATH"}  # Docker's own
        for var in re.findall(r"\$\$\{?([A-Za-z_][A-Za-z0-9_]*)", test):
            assert var in env, f"{name}: healthcheck reads {var}, which its container lacks"


def test_the_image_installs_with_the_constraints_as_a_non_root_user() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    install = [ln for ln in lines if ln.startswith("RUN pip install")]
    assert install and "-c constraints.txt" in install[0]
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    copied = {ln.split()[1] for ln in lines if ln.startswith("COPY ")}
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.findall(r'"([a-z]+)\*"', pyproject.split("[tool.setuptools.packages.find]")[1])
    assert set(packages) <= copied, f"packages not copied: {sorted(set(packages) - copied)}"
