"""Real clients (the openai SDK, langchain-openai, litellm, the Vercel AI SDK) against three base
URLs serving the same replayed upstream (`streamkit fake-upstream`, streamkit/replay/):

* `direct`: the client straight to fake-upstream (what the client assembles with no relay);
* `relay`: through the app under gunicorn;
* `nginx`: through the shipped nginx template in front of the app (streamkit/proxies runner).

Every test asserts that what a client assembles through `relay` and `nginx` equals `direct`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streamkit.demo import write_certificates
from streamkit.proxies import PROXIES
from tests.conftest import Processes, require_binary
from tests.e2e.harness import Tls, proxy_values
from tests.relay.conftest import API_KEY, MODEL, app_env, start_fake_upstream

__all__ = ["API_KEY", "MODEL", "Bases"]


@dataclass
class Bases:
    """OpenAI base URLs (ending in /v1) and the key each wants."""

    direct: str
    relay: str
    nginx: str

    def key(self, name: str) -> str:
        return API_KEY if name == "direct" else "client-side-key"

    def url(self, name: str) -> str:
        return str(getattr(self, name))


VIA = ["relay", "nginx"]


@pytest.fixture(scope="package")
def bases(package_processes: Processes) -> Bases:
    require_binary("nginx")
    upstream = start_fake_upstream(package_processes, package_processes.directory)
    # Responses relayed natively (fake-upstream serves /v1/responses, as OpenAI and vLLM do).
    _, url = package_processes.app(env=app_env(upstream.url, UPSTREAM_RESPONSES="native"))
    workdir = package_processes.directory / "nginx"
    workdir.mkdir(exist_ok=True)
    cert, key, ca = write_certificates(workdir)
    nginx = PROXIES["nginx"]
    values = proxy_values(nginx, url.removeprefix("http://"), Tls(cert=cert, key=key, ca=ca))
    package_processes.add(nginx.start(workdir, values, label="clients"))
    return Bases(direct=upstream.url, relay=url + "/v1", nginx=f"http://{values['listen']}/v1")
