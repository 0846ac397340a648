"""Headless Chromium (Debian's package) driven by Playwright, against the demo page through the real
nginx and Caddy configs. Flags: without the background-
networking flags Chromium keeps dialling out of this closed machine."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from streamkit.proxies import PROXIES
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes, require_binary
from tests.e2e.conftest import installed, tls  # noqa: F401  (the shared test CA fixture)
from tests.e2e.harness import Target, Tls, start_hop, start_target

CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The app's heartbeat in these tests (the kit default is 15 s).
PING_INTERVAL = 1.0
BROWSER_PROXIES = ("nginx", "caddy")


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and later tests that start their own loop (anyio.run) would fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium") or require_binary("chromium")
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def page_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    return start(module_processes, tmp_path_factory.mktemp("browser-app"), PING_INTERVAL=str(PING_INTERVAL))


@pytest.fixture(scope="module", params=BROWSER_PROXIES)
def edge(
    request: pytest.FixtureRequest, page_app: RunningApp, tls: Tls, module_processes: Processes,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """The shipped nginx or Caddy config in front of the app (plain HTTP/1.1 and TLS with HTTP/2)."""
    proxy = installed(PROXIES[request.param])
    target = start_target(proxy, tmp_path_factory.mktemp(f"browser-{proxy.name}"), page_app, tls, label="browser")
    module_processes.add(target.process)
    yield target
    target.process.stop()


@pytest.fixture(scope="module")
def buffering_edge(
    page_app: RunningApp, tls: Tls, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
) -> Target:
    """Negative control: the naive nginx site behind another nginx (the inner one hides the app's
    X-Accel-Buffering header, so the outer one buffers), as edge nginx -> ingress-nginx -> app."""
    workdir = tmp_path_factory.mktemp("browser-naive")
    hop = start_hop("nginx", workdir / "hop", page_app, tls)
    module_processes.add(hop.process)
    naive = Path(__file__).resolve().parents[1] / "negative" / "nginx" / "naive-behind-nginx.conf"
    target = start_target(PROXIES["nginx"], workdir / "edge", page_app, tls, hop.url.removeprefix("http://"),
                          naive, "naive")
    module_processes.add(target.process)
    return target
