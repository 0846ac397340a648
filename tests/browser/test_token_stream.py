"""Browsers stream with a short-lived stream token (issue #20, acceptance 4).

Headless Chromium's real `EventSource` through the shipped nginx config, to the app with client keys: a
reused or expired token is refused; neither nginx's access log nor the app's log holds the token; no
long-lived key is in a URL.

Access logs: each shipped config that writes one (nginx, HAProxy, Traefik) runs in front of the same app;
a streamed request with a token must show in the log (the log is real) without the token. The negative
control runs the same config with the proxy's default request-line format, the one line that differs:
there the token shows. Caddy and Envoy ship without an access log (checked below).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from app.auth import digest_of
from streamkit.local import wait_until
from streamkit.proxies import PROXIES
from streamkit.proxies.base import INFRA
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import Target, Tls, proxy_values, start_target

KEY = "sk-browser-" + "5f" * 16
TOKEN_TTL = 2.0  # STREAM_TOKEN_TTL_SECONDS in this test
STREAM = "/v1/chat/stream?prompt=token&tokens=5&tokens_per_second=50&first_token_delay=0"
LOG_STREAM = "/v1/chat/stream?prompt=logs&tokens=3&tokens_per_second=0&first_token_delay=0"

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
    logs = {"nginx": access_lines("nginx", nginx.process.logs(tail=100_000)), "app": nginx.app.proc.logs(tail=100_000)}
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


# proxy -> (main config, the shipped access-log line(s), the proxy's default in their place,
#           what a logged GET of the stream looks like in the shipped format)
FORMATS = {
    "nginx": ("streamkit.conf", "access_log /dev/stdout streamkit_noquery;", "access_log /dev/stdout combined;",
              "GET /v1/chat/stream "),
    "haproxy": ("haproxy.cfg", None, "    option httplog\n", '"GET /v1/chat/stream HTTP/1.1"'),
    "traefik": ("traefik.yml", "accessLog:\n  format: json\n  fields:\n    names:\n      RequestPath: drop\n",
                "accessLog: {}\n", '"RequestMethod":"GET"'),
}


# An access-log line of each proxy in its process output (the rest is its error log; see docs/auth.md:
# error logs may name a failed request with its query string).
ACCESS_LINE = {
    "nginx": re.compile(r"^\d{1,3}(?:\.\d{1,3}){3} - "),
    "haproxy": re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}:\d+ \["),
    "traefik": re.compile(r'^(?:\{.*"RequestMethod"|\d{1,3}(?:\.\d{1,3}){3} - )'),  # JSON, or the default CLF
}


def access_lines(name: str, log: str) -> str:
    return "\n".join(line for line in log.splitlines() if ACCESS_LINE[name].match(line))


def default_format(name: str, directory: Path) -> Path:
    """The shipped main config with its access-log format set back to the proxy's default."""
    config, shipped, default, _ = FORMATS[name]
    text = (INFRA / name / config).read_text()
    if shipped is None:  # HAProxy: the one `log-format` line
        line = next(line for line in text.splitlines(keepends=True) if line.lstrip().startswith("log-format"))
        shipped = line
    assert shipped in text, f"{config}: the access-log line moved; update FORMATS"
    path = directory / config
    path.write_text(text.replace(shipped, default))
    return path


def streamed_with_token(url: str) -> str:
    with httpx.Client(timeout=10) as client:
        token = client.post(url + "/v1/stream-tokens", headers={"Authorization": f"Bearer {KEY}"}).json()["token"]
        response = client.get(f"{url}{LOG_STREAM}&stream_token={token}")
    assert response.status_code == 200 and "event: done" in response.text, response.text
    return str(token)


@pytest.mark.parametrize("shipped", [True, False], ids=["shipped", "default-format"])
@pytest.mark.parametrize("name", list(FORMATS))
def test_token_not_in_access_log(
    name: str, shipped: bool, keyed_app: RunningApp, tls: Tls, processes: Processes, tmp_path: Path
) -> None:
    proxy = installed(PROXIES[name])
    override = None if shipped else {proxy.configs[0]: default_format(name, tmp_path)}
    # The shipped config's values for both (the control marks the same keys: one line differs).
    values = proxy_values(proxy, keyed_app.url.removeprefix("http://"), tls)
    process = processes.add(proxy.start(tmp_path / "proxy", values, override, label="logs"))
    token = streamed_with_token(f"http://{values['listen']}")
    logged = FORMATS[name][3] if shipped else token
    wait_until(lambda: logged in access_lines(name, process.logs(tail=100_000)), 10, 0.05, f"{name} access log")
    log = access_lines(name, process.logs(tail=100_000))
    if shipped:
        assert token not in log and token.rsplit(".", 1)[1] not in log
    else:
        assert token in log  # negative control: the default format logs the whole request line


@pytest.mark.parametrize("config", ["caddy/Caddyfile", "envoy/envoy.yaml"])
def test_proxies_without_an_access_log(config: str) -> None:
    text = (INFRA / config).read_text()
    assert "access_log" not in text and "\n\tlog" not in text and "    log " not in text, (
        f"{config} now writes an access log: add it to FORMATS (its format must leave out the query string)"
    )
