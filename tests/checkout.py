"""Tests write only under their own temporary directories (issue 21, acceptance 6).

A pytest plugin (registered in tests/conftest.py): at the start of the run it takes
`git status --ignored --porcelain` of the checkout, at the end it takes it again, and any entry that
is new fails the run, naming the files. Tool caches that Python and pytest themselves write are not
a test's doing and are allowed (ALLOWED). The run's one report, the support matrix's results, is
written outside the checkout (tests/support_matrix.py RESULTS).
Proved by tests/test_checkout.py, which writes a Prometheus multiprocess file into a scratch git
repository and expects it reported.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Written by the interpreter and the tools, not by a test; a trailing slash means a folder anywhere.
ALLOWED = ("__pycache__/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/")
_BEFORE = pytest.StashKey[set[str] | None]()


def snapshot(repo: Path) -> set[str] | None:
    """Entries of `git status --ignored --porcelain` (untracked and ignored ones collapsed to their
    folder); None when `repo` is not a git checkout or git is missing."""
    if not shutil.which("git"):
        return None
    result = subprocess.run(
        ["git", "-C", str(repo), "status", "--ignored", "--porcelain"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    return {line[3:] for line in result.stdout.splitlines() if line[:2] in ("??", "!!")}


def _allowed(entry: str) -> bool:
    return any(entry == allowed or entry.endswith("/" + allowed) or entry.startswith(allowed) for allowed in ALLOWED)


def written(before: set[str], after: set[str]) -> list[str]:
    """Entries that appeared during the run and are not a tool's cache."""
    return sorted(entry for entry in after - before if not _allowed(entry))


def _worker(session: pytest.Session) -> bool:
    """A pytest-xdist worker (`make test` runs two): the controller alone compares the checkout."""
    return hasattr(session.config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _worker(session):
        session.stash[_BEFORE] = snapshot(REPO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _worker(session):
        return
    before = session.stash.get(_BEFORE, None)
    after = snapshot(REPO)
    if before is None or after is None:
        return
    new = written(before, after)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "tests wrote into the checkout (write under tmp_path instead): " + ", ".join(new)
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
