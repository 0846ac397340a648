"""Fixtures for dead-peer tests: links to namespaces, made and deleted by name (also on failure)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import ON_CI, Processes, require_binary
from tests.netns.netns import Link, kill_all, sweep_stale


def require_root() -> None:
    if os.geteuid() != 0:
        message = "network namespaces need root (CI runs as root)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def netns_ready() -> None:
    """Root and iproute2 present; leftovers of dead sessions removed (by name)."""
    require_binary("ip")
    require_binary("ss")
    require_root()
    sweep_stale()


@contextlib.contextmanager
def links() -> Iterator[Callable[[], Link]]:
    """Call the yielded function for a fresh namespace + veth; all deleted on exit, whatever happened."""
    made: list[Link] = []

    def make() -> Link:
        link = Link.create(len(made))
        made.append(link)
        return link

    try:
        yield make
    finally:
        for link in made:
            link.delete()


@contextlib.contextmanager
def scenario_link(processes: Processes) -> Iterator[Link]:
    """One link for a module's scenario. On exit, whatever happened, every process the module
    started is SIGKILLed (a graceful stop would wait on sends to a peer that vanished), then the
    link is deleted."""
    with links() as make:
        try:
            yield make()
        finally:
            kill_all(processes.started)


@pytest.fixture
def new_link(netns_ready: None) -> Iterator[Callable[[], Link]]:
    """Call it for a fresh namespace + veth; all deleted at teardown, whatever happened."""
    with links() as make:
        yield make
