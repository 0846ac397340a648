"""Local processes for the demo and the tests: free ports, start, wait until ready, stop by PID.

Every process is started in its own session, logs to a file, and is stopped by its PID: SIGTERM
first, SIGKILL after a deadline, and any children it left (gunicorn workers) by their PIDs too, then
whatever is left in the session it was started in (orphans whose parent died first).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil


def _terminate_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the starting process dies (a killed test run
    must not leave servers behind). Linux only; elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float, interval: float = 0.02, what: str = "condition"
) -> object:
    """Poll `predicate` until it returns something truthy; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """One started process with its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Variables removed from the inherited environment (an empty value is not the same as unset:
    # prometheus_client, for one, takes PROMETHEUS_MULTIPROC_DIR="" as "write into the cwd").
    unset: Sequence[str] = ()
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            list(self.argv),
            env={key: value for key, value in {**os.environ, **self.env}.items() if key not in self.unset},
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def logs(self, tail: int = 200) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; then SIGKILL any leftover children, each by PID."""
        if self.popen is None:
            return None
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        for child in children:
            try:
                child.kill()
                child.wait(5)
            except psutil.NoSuchProcess:
                pass
        # A child whose parent died before this stop (an nginx worker whose master was killed) is
        # no longer below the PID, but still in the session it was started in (start_new_session:
        # its group ID is this PID, which Linux does not reuse while the group has a member).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        return self.popen.returncode


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    return check


# App base URL -> its metrics listener's /metrics URL, for every app started in this process.
_METRICS_URLS: dict[str, str] = {}


def register_metrics(app_url: str, metrics_port: int, host: str = "127.0.0.1") -> str:
    """Remember where the app at `app_url` serves its metrics (METRICS_PORT); return that URL."""
    _METRICS_URLS[app_url] = f"http://{host}:{metrics_port}/metrics"
    return _METRICS_URLS[app_url]


def metrics_url(app_url: str) -> str:
    """The /metrics URL of the metrics listener of an app started here (start_app or register_metrics)."""
    try:
        return _METRICS_URLS[app_url]
    except KeyError:
        raise KeyError(f"no metrics listener known for {app_url}: start it with start_app") from None


def start_app(
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    port: int | None = None,
    timeout: float = 20.0,
    metrics_port: int | None = None,
    host: str = "127.0.0.1",
) -> tuple[Process, str]:
    """Start the reference app under gunicorn (`streamkit serve`); return it and its base URL. Its
    metrics listener gets a free port too (`metrics_url(url)` names it)."""
    port = port or free_port()
    metrics_port = metrics_port or free_port()
    metrics_dir = log_dir / f"metrics-{port}"
    proc = Process(
        name="app",
        argv=[
            sys.executable,
            "-m",
            "streamkit.cli",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--metrics-port",
            str(metrics_port),
        ],
        log_path=log_dir / f"app-{port}.log",
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **(env or {})},
    ).start()
    url = f"http://{host}:{port}"
    wait_serving(proc, url + "/healthz", timeout)
    wait_serving(proc, register_metrics(url, metrics_port, host), timeout)
    return proc, url


def start_fake_upstream(
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 20.0,
) -> tuple[Process, str]:
    """Start `streamkit fake-upstream`; return it and its OpenAI base URL (`http://127.0.0.1:PORT/v1`)."""
    port = port or free_port()
    proc = Process(
        name="fake-upstream",
        argv=[sys.executable, "-m", "streamkit.cli", "fake-upstream", "--port", str(port), *extra_args],
        log_path=log_dir / f"fake-upstream-{port}.log",
        env=dict(env or {}),
    ).start()
    url = f"http://127.0.0.1:{port}/v1"
    wait_serving(proc, url + "/models", timeout)
    return proc, url


def wait_serving(
    proc: Process,
    ready: str | Callable[[], object],
    timeout: float,
    interval: float = 0.05,
    what: str = "",
) -> None:
    """The one wait-until-serving-or-stop helper: poll `ready` (a URL that must answer below 500, or
    a predicate) until it holds; stop the process (by PID) if it exits first or never gets ready."""
    check = http_ready(ready) if isinstance(ready, str) else ready
    what = what or f"{proc.name} {ready if isinstance(ready, str) else 'ready'}"
    try:
        wait_until(lambda: not proc.alive() or check(), timeout, interval, what)
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.logs()}")
    except BaseException:
        proc.stop()
        raise
