"""Fixtures of the e2e suite: test certificates, two apps (pings on / off, shared by the session), and
per proxy one shipped config in front of each app (shared by the module); all stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamkit.demo import write_certificates
from streamkit.proxies import PROXIES
from streamkit.proxies.base import ProxyDef
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes, require_binary
from tests.e2e.harness import NO_PINGS, PING_INTERVAL, Target, Tls, start_target


def installed(proxy: ProxyDef) -> ProxyDef:
    """The proxy, if its binary is installed: else skip locally and fail under CI=true."""
    if proxy.which() is None:
        require_binary(proxy.binary)
    return proxy


def need(proxy: ProxyDef, capability: str) -> None:
    """Skip, with the reason, a check the proxy does not support."""
    if capability not in proxy.capabilities:
        pytest.skip(proxy.notes.get(capability, f"{proxy.name} does not declare the capability {capability!r}"))


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throw-away CA and a certificate for 127.0.0.1 / localhost, as `streamkit demo` makes (openssl)."""
    made = write_certificates(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.fail("openssl is not installed: the TLS checks need it (Debian: apt-get install openssl)")
    cert, key, ca = made
    return Tls(cert=cert, key=key, ca=ca)


@pytest.fixture(scope="session")
def apps(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """The apps, shared by every e2e module (each app starts once per run); logs shown on failure."""
    procs = Processes(tmp_path_factory.mktemp("apps"))
    try:
        yield procs
    finally:
        if request.session.testsfailed:
            procs.dump_logs()
        procs.stop_all()


@pytest.fixture(scope="session")
def pinged_app(apps: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    return start(apps, tmp_path_factory.mktemp("app-pinged"), PING_INTERVAL=str(PING_INTERVAL))


@pytest.fixture(scope="session")
def silent_app(apps: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    return start(apps, tmp_path_factory.mktemp("app-silent"), PING_INTERVAL=str(NO_PINGS))


@pytest.fixture(scope="module", params=sorted(PROXIES))
def proxy(request: pytest.FixtureRequest) -> ProxyDef:
    return installed(PROXIES[request.param])


def _shipped(
    proxy: ProxyDef, app: RunningApp, tls: Tls, processes: Processes, workdir: Path, label: str
) -> Iterator[Target]:
    target = start_target(proxy, workdir, app, tls, label=label)
    processes.add(target.process)
    yield target
    target.process.stop()


@pytest.fixture(scope="module")
def target(
    proxy: ProxyDef,
    pinged_app: RunningApp,
    tls: Tls,
    module_processes: Processes,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """The shipped config in front of the app with pings."""
    yield from _shipped(proxy, pinged_app, tls, module_processes, tmp_path_factory.mktemp(proxy.name), "pinged")


@pytest.fixture(scope="module")
def silent_target(
    proxy: ProxyDef,
    silent_app: RunningApp,
    tls: Tls,
    module_processes: Processes,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """The shipped config in front of the app with pings off."""
    yield from _shipped(proxy, silent_app, tls, module_processes, tmp_path_factory.mktemp(proxy.name), "silent")
