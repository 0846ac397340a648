"""Auth at the proxy instead of the app (issue #20; docs/auth.md "Where auth lives"): nginx `auth_request`
against a streamkit instance holding the keys (`GET /v1/auth`), in front of an app without keys.

The nginx lines are the ones docs/auth.md shows (read from it, so the documented example is the tested one).
The negative control is the same config without its `auth_request` line: requests without a key reach the app.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from streamkit.local import free_port
from streamkit.proxies import PROXIES
from tests.auth.conftest import auth, write_keys
from tests.conftest import Processes, require_binary

DOCS = Path(__file__).resolve().parents[2] / "docs" / "auth.md"
STREAMING = """proxy_pass http://streamkit_app;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;"""


def documented_locations() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1, "docs/auth.md: expected one nginx example"
    return blocks[0].replace("proxy_pass http://streamkit_app;", STREAMING, 1)


def site(directory: Path, listen: str, app: str, auth_service: str, with_auth: bool) -> Path:
    locations = documented_locations()
    if not with_auth:
        locations = "\n".join(line for line in locations.splitlines() if "auth_request /" not in line)
    path = directory / ("auth-request.conf" if with_auth else "no-auth-request.conf")
    path.write_text(
        "# Test config: docs/auth.md's nginx example around two upstreams (tests/auth/test_proxy_auth.py).\n"
        f"upstream streamkit_app {{ server {app}; }}\n"
        f"upstream streamkit_auth {{ server {auth_service}; }}\n"
        f"server {{\n    listen {listen};  # streamkit: listen\n{locations}}}\n"
    )
    return path


@pytest.fixture(scope="module")
def apps(module_processes: Processes, plain_app: str) -> tuple[str, str]:
    """The app without keys (the fake; with a real upstream it would run with ALLOW_ANONYMOUS=true), and the
    key-checking instance nginx asks."""
    keys = write_keys(module_processes.directory / "api-keys")
    return plain_app, module_processes.app(env={"API_KEYS_FILE": str(keys)})[1]


@pytest.mark.parametrize("with_auth", [True, False], ids=["auth_request", "control-without"])
def test_nginx_auth_request_keeps_keyless_requests_from_the_app(
    apps: tuple[str, str], package_processes: Processes, processes: Processes, tmp_path: Path, with_auth: bool
) -> None:
    require_binary("nginx")
    app_url, auth_url = apps
    listen = f"127.0.0.1:{free_port()}"
    config = site(tmp_path, listen, app_url.removeprefix("http://"), auth_url.removeprefix("http://"), with_auth)
    nginx = processes.add(PROXIES["nginx"].start(tmp_path / "nginx", {"listen": listen}, config, label="auth"))
    edge = f"http://{listen}"

    def stream(marker: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{edge}/v1/chat/stream?prompt={marker}&tokens=3&tokens_per_second=0", headers=headers,
                         timeout=10)

    keyless, wrong = f"keyless-{uuid.uuid4().hex[:8]}", f"wrong-{uuid.uuid4().hex[:8]}"
    good = stream("good", auth("alpha"))
    assert good.status_code == 200 and "event: done" in good.text, good.text
    answers = [stream(keyless, {}), stream(wrong, {"Authorization": "Bearer sk-wrong"})]
    app_log = "".join(proc.logs(tail=100_000) for proc in package_processes.started if proc.name == "app")
    if with_auth:
        assert [a.status_code for a in answers] == [401, 401]
        assert keyless not in app_log and wrong not in app_log  # neither reached the app
        assert "GET /_streamkit_auth" not in nginx.logs(tail=100_000)  # internal: not reachable from outside
        assert httpx.get(f"{edge}/_streamkit_auth", timeout=5).status_code == 404
    else:
        assert [a.status_code for a in answers] == [200, 200]  # the app has no keys: the proxy was the lock
        assert keyless in app_log
