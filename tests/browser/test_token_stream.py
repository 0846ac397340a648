"""A browser streams with a short-lived stream token (issue #20, acceptance 4): headless Chromium's real
`EventSource` through the shipped nginx config, to the app with client keys. A reused or expired token is
refused; neither nginx's access log nor the app's log holds the token; no long-lived key is in a URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from app.auth import digest_of
from streamkit.proxies import PROXIES
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import Target, Tls, start_target

KEY = "sk-browser-" + "5f" * 16
TOKEN_TTL = 2.0  # STREAM_TOKEN_TTL_SECONDS in this test
STREAM = "/v1/chat/stream?prompt=token&tokens=5&tokens_per_second=50&first_token_delay=0"

# In the page: trade the key for a token (a header, never a URL), then stream with EventSource.
TRADE = """async (key) => {
  const r = await fetch('/v1/stream-tokens', {method: 'POST', headers: {Authorization: 'Bearer ' + key}});
  return (await r.json()).token;
}"""
STREAM_WITH = """async ([path, token]) => {
  const url = path + '&stream_token=' + encodeURIComponent(token);
  return await new Promise((resolve) => {
    const source = new EventSource(url);
    let tokens = 0;
    source.addEventListener('token', () => tokens++);
    source.addEventListener('done', () => { source.close(); resolve({outcome: 'done', tokens}); });
    source.onerror = () => { source.close(); resolve({outcome: 'refused', tokens}); };
  });
}"""
STATUS_OF = "async (url) => (await fetch(url)).status"


def keys_file(directory: Path) -> Path:
    path = directory / "api-keys"
    path.write_text(f"browser  {digest_of(KEY).hex()}\n")
    return path


@pytest.fixture(scope="module")
def keyed_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    directory = tmp_path_factory.mktemp("token-app")
    return start(module_processes, directory, API_KEYS_FILE=str(keys_file(directory)),
                 STREAM_TOKEN_TTL_SECONDS=str(TOKEN_TTL))


@pytest.fixture(scope="module")
def nginx(keyed_app: RunningApp, tls: Tls, module_processes: Processes,
          tmp_path_factory: pytest.TempPathFactory) -> Target:
    target = start_target(installed(PROXIES["nginx"]), tmp_path_factory.mktemp("token-nginx"), keyed_app, tls,
                          label="token")
    module_processes.add(target.process)
    return target


@pytest.fixture
def page(browser: Browser, nginx: Target) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(nginx.url + "/")
    yield page
    context.close()


def stream(page: Page, token: str) -> dict[str, Any]:
    return dict(page.evaluate(STREAM_WITH, [STREAM, token]))


def test_eventsource_streams_with_a_token_which_works_once(page: Page, nginx: Target) -> None:
    token = page.evaluate(TRADE, KEY)
    assert stream(page, token) == {"outcome": "done", "tokens": 5}
    assert stream(page, token) == {"outcome": "refused", "tokens": 0}  # reused
    assert page.evaluate(STATUS_OF, f"{STREAM}&stream_token={token}") == 401
    assert page.evaluate(STATUS_OF, STREAM) == 401  # no token, no key
    # A second token streams again: the refusals above are about the used token, nothing else.
    assert stream(page, page.evaluate(TRADE, KEY)) == {"outcome": "done", "tokens": 5}
    logs = {"nginx": nginx.process.logs(tail=100_000), "app": nginx.app.proc.logs(tail=100_000)}
    assert "GET /v1/chat/stream " in logs["nginx"]  # the access log is real and has these requests
    for name, log in logs.items():
        assert token not in log and token.rsplit(".", 1)[1] not in log, f"the token is in the {name} log"
        assert KEY not in log


def test_an_expired_token_is_refused(page: Page) -> None:
    token = page.evaluate(TRADE, KEY)
    page.wait_for_timeout(TOKEN_TTL * 1000 + 500)
    assert stream(page, token) == {"outcome": "refused", "tokens": 0}
    assert page.evaluate(STATUS_OF, f"{STREAM}&stream_token={token}") == 401
    # Control: a fresh token, used at once.
    assert stream(page, page.evaluate(TRADE, KEY)) == {"outcome": "done", "tokens": 5}
