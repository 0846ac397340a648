"""`Process.stop` leaves nothing of what it started (streamkit/local.py): also a child whose parent
died before the stop, as an nginx worker whose master was killed (found once after a netns run)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from streamkit.local import Process, wait_until

# A parent that starts a long-lived child, prints its PID, and dies at once (the child is orphaned).
ORPHANING = (
    "import subprocess, sys; "
    "print(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']).pid, flush=True)"
)


def _orphan(tmp_path: Path) -> tuple[Process, int]:
    proc = Process("orphaning", [sys.executable, "-c", ORPHANING], tmp_path / "orphaning.log").start()
    wait_until(lambda: proc.logs().strip().isdigit() and not proc.alive(), 10, 0.05, "parent printed and exited")
    child = int(proc.logs().strip())
    assert psutil.pid_exists(child) and psutil.Process(child).ppid() != proc.pid  # orphaned, still running
    return proc, child


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_kills_a_child_orphaned_before_the_stop(tmp_path: Path) -> None:
    proc, child = _orphan(tmp_path)
    try:
        proc.stop()
        wait_until(lambda: _gone(child), 5, 0.05, "orphaned child killed")
    finally:
        if not _gone(child):  # the test failed: stop what it started, by PID
            os.kill(child, 9)


def test_negative_control_without_the_session_kill_the_orphan_survives(tmp_path: Path) -> None:
    """What stop did before: the leader and the children still below it, by PID. The orphan is no
    longer below the leader, so it survives that: the session kill is what reaches it."""
    proc, child = _orphan(tmp_path)
    try:
        assert proc.popen is not None
        proc.popen.wait(5)  # the leader is gone: the walk by PID finds nothing below it
        assert not psutil.pid_exists(proc.pid)
        time.sleep(0.2)
        assert not _gone(child)
    finally:
        os.kill(child, 9)
