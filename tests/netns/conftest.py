"""Fixtures for dead-peer tests: links to namespaces, made and deleted by name (also on failure)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import ON_CI, require_binary
from tests.netns.netns import Link, sweep_stale


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


def make_links() -> tuple[Callable[[], Link], Callable[[], None]]:
    made: list[Link] = []

    def make() -> Link:
        link = Link.create(len(made))
        made.append(link)
        return link

    def delete_all() -> None:
        for link in made:
            link.delete()

    return make, delete_all


@pytest.fixture
def new_link(netns_ready: None) -> Iterator[Callable[[], Link]]:
    """Call it for a fresh namespace + veth; all deleted at teardown, whatever happened."""
    make, delete_all = make_links()
    try:
        yield make
    finally:
        delete_all()
