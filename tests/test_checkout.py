"""The end-of-run check of tests/checkout.py reports a file a test leaves in the checkout (the
Prometheus multiprocess file an empty PROMETHEUS_MULTIPROC_DIR used to drop into the repository
root) and lets the interpreter's caches pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.checkout import snapshot, written


def _repo(path: Path) -> Path:
    """A scratch checkout with a tracked package, like tests/ in the real one."""
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / ".gitignore").write_text("__pycache__/\n")
    (path / "pkg").mkdir()
    (path / "pkg" / "__init__.py").write_text("")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    return path


def test_a_file_written_into_the_checkout_is_reported(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    before = snapshot(repo)
    assert before is not None
    (repo / "counter_123.db").write_bytes(b"\0")
    (repo / "sub").mkdir()
    (repo / "sub" / "gauge_livesum_123.db").write_bytes(b"\0")
    after = snapshot(repo)
    assert after is not None
    assert written(before, after) == ["counter_123.db", "sub/"]


def test_negative_control_caches_and_files_present_before_are_not_reported(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    (repo / "already.db").write_bytes(b"\0")
    before = snapshot(repo)
    assert before is not None
    (repo / "pkg" / "__pycache__").mkdir()
    (repo / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (repo / ".pytest_cache").mkdir()
    after = snapshot(repo)
    assert after is not None and after != before
    assert written(before, after) == []


def test_outside_a_git_checkout_there_is_nothing_to_compare(tmp_path: Path) -> None:
    assert snapshot(tmp_path) is None
