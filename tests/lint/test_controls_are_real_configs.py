"""The lint negative controls are configs the real proxies accept: each fails a streaming rule,
not the proxy's own syntax check (so the rules are tested on input users could really ship)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streamkit.lint.tools import find_tool
from tests.conftest import require_binary
from tests.lint.helpers import NEGATIVE

CONTROLS = NEGATIVE / "lint"
VALIDATE_TIMEOUT = 60  # seconds per validation run; Envoy's start-up dominates on a busy machine


def tool(name: str) -> str:
    """The venv's copy (envoy), else the system's (nginx, haproxy from Debian)."""
    return find_tool(name) or require_binary(name)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=VALIDATE_TIMEOUT, check=False)


@pytest.mark.parametrize("control", sorted((CONTROLS / "nginx").glob("*.conf")), ids=lambda p: p.name)
def test_nginx_accepts_control(control: Path, tmp_path: Path) -> None:
    nginx = tool("nginx")
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    temp_paths = " ".join(
        f"{kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'logs' / 'error.log'};\nevents {{}}\n"
        f"http {{\n  access_log off;\n  {temp_paths}\n  include {control};\n}}\n"
    )
    result = _run([nginx, "-t", "-p", str(tmp_path), "-c", str(main)])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("control", sorted((CONTROLS / "haproxy").glob("*.cfg")), ids=lambda p: p.name)
def test_haproxy_accepts_control(control: Path) -> None:
    result = _run([tool("haproxy"), "-c", "-f", str(control)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("control", sorted((CONTROLS / "envoy").glob("*.yaml")), ids=lambda p: p.name)
def test_envoy_accepts_control(control: Path) -> None:
    result = _run([tool("envoy"), "--mode", "validate", "--disable-hot-restart", "-c", str(control)])
    assert result.returncode == 0, result.stdout + result.stderr
