"""A stream token (in the query string, as EventSource needs) is never in a proxy's access log (issue #20).

Each shipped config that writes an access log (nginx, HAProxy, Traefik) runs in front of the app with
client keys; a streamed request with a token must show in the log (the log is real) without the token.
The negative control runs the same config with the proxy's default request-line format, the one line
that differs: there the token shows. Caddy and Envoy ship without an access log (checked below).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.auth import digest_of
from streamkit.local import wait_until
from streamkit.proxies import PROXIES
from streamkit.proxies.base import INFRA
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import Tls, proxy_values

KEY = "sk-logs-" + "a1" * 16
STREAM = "/v1/chat/stream?prompt=logs&tokens=3&tokens_per_second=0&first_token_delay=0"

# proxy -> (main config, the shipped access-log line(s), the proxy's default in their place,
#           what a logged GET of the stream looks like in the shipped format)
FORMATS = {
    "nginx": ("streamkit.conf", "access_log /dev/stdout streamkit_noquery;", "access_log /dev/stdout combined;",
              "GET /v1/chat/stream "),
    "haproxy": ("haproxy.cfg", None, "    option httplog\n", '"GET /v1/chat/stream HTTP/1.1"'),
    "traefik": ("traefik.yml", "accessLog:\n  format: json\n  fields:\n    names:\n      RequestPath: drop\n",
                "accessLog: {}\n", '"RequestMethod":"GET"'),
}


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


@pytest.fixture(scope="module")
def keyed_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    directory = tmp_path_factory.mktemp("logs-app")
    keys = directory / "api-keys"
    keys.write_text(f"logs  {digest_of(KEY).hex()}\n")
    return start(module_processes, directory, API_KEYS_FILE=str(keys))


def streamed_with_token(url: str) -> str:
    with httpx.Client(timeout=10) as client:
        token = client.post(url + "/v1/stream-tokens", headers={"Authorization": f"Bearer {KEY}"}).json()["token"]
        response = client.get(f"{url}{STREAM}&stream_token={token}")
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
    wait_until(lambda: logged in process.logs(tail=100_000), 10, 0.05, f"{name} access log line")
    log = process.logs(tail=100_000)
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
