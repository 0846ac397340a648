"""Resumable streams (issue 19): real redis-server, real gunicorn app instances, a real nginx in front.

* `redis`: Debian's redis-server on a free port (no persistence), stopped by PID.
* `memory_app`: one instance, in-memory log (the default), short grace and TTL.
* `pair`: two instances sharing that Redis behind one nginx. The nginx config (a test harness, not
  shipped: the shipped site file has one app upstream) routes by the request header `X-Replica: a|b`,
  so a test decides deterministically which instance serves a request; without it, round robin.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from app.resume.core import OWNER_COOKIE
from streamkit.local import Process, free_port, metrics_url, wait_serving
from streamkit.proxies import nginx
from streamkit.proxies.base import Launch
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes, RedisServer, require_binary, start_redis

# Shortened for the tests (kit defaults: 10 s grace, 300 s TTL, 5 s lease).
GRACE = 2.0
TTL = 1.5
LEASE = 1.0

# Test harness, not shipped: two app instances behind one nginx, chosen by `X-Replica: a|b`. Runs
# inside the nginx runner's own harness main config (streamkit/proxies/nginx.py).
TWO_REPLICAS = """\
upstream a {{ server 127.0.0.1:{port_a}; keepalive 8; }}
upstream b {{ server 127.0.0.1:{port_b}; keepalive 8; }}
upstream both {{ server 127.0.0.1:{port_a}; server 127.0.0.1:{port_b}; keepalive 8; }}
map $http_x_replica $replica {{ a a; b b; default both; }}
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://$replica;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout 60s;
    }}
}}
"""


def start_nginx(processes: Processes, directory: Path, port_a: int, port_b: int) -> str:
    """nginx in front of two app instances; returns its URL once it proxies to them."""
    binary = require_binary("nginx")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = directory / "two-replicas.conf"
    site.write_text(TWO_REPLICAS.format(port=port, port_a=port_a, port_b=port_b))
    main = nginx.write_main_config(Launch(binary, directory, {"site": site}, {}))
    proc = processes.add(
        Process(name="nginx", argv=nginx.command(Launch(binary, directory, {"main": main}, {})),
                log_path=directory / "nginx.log").start()
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(proc, url + "/healthz", 10)
    return url


def app_env(**extra: str) -> dict[str, str]:
    return {"RESUME_GRACE_SECONDS": str(GRACE), "RESUME_TTL_SECONDS": str(TTL),
            "RESUME_LEASE_SECONDS": str(LEASE), **extra}


def port_of(app: RunningApp) -> int:
    return int(app.url.rsplit(":", 1)[1])


@dataclass
class Pair:
    a: RunningApp
    b: RunningApp
    url: str  # nginx
    redis: RedisServer


@pytest.fixture(scope="module")
def redis(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RedisServer:
    return start_redis(module_processes, tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="module")
def memory_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    return start(module_processes, tmp_path_factory.mktemp("memory"), **app_env())


@pytest.fixture(scope="module")
def pair(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Pair:
    redis_url = redis.url
    records = tmp_path_factory.mktemp("pair")  # one record dir: the upstream's view over both instances
    # A drains within DRAIN_SECONDS on SIGTERM (sent by the last test of test_replicas.py that uses A).
    a = start(module_processes, records, **app_env(REDIS_URL=redis_url, DRAIN_SECONDS="1"))
    b = start(module_processes, records, **app_env(REDIS_URL=redis_url))
    url = start_nginx(module_processes, tmp_path_factory.mktemp("nginx"), port_of(a), port_of(b))
    return Pair(a, b, url, redis)


# --- client helpers --------------------------------------------------------------------------------
def stream_path(prompt: str, tokens: int = 30, tokens_per_second: float = 20, resumable: bool = True) -> str:
    flag = "&resumable=1" if resumable else ""
    return f"/v1/chat/stream?prompt={prompt}&tokens={tokens}&tokens_per_second={tokens_per_second}" \
           f"&first_token_delay=0{flag}"


def request_id(what: str) -> str:
    return f"{what}-{secrets.token_hex(4)}"


@dataclass
class Read:
    status: int
    events: list[ServerSentEvent]
    cookies: httpx.Cookies
    stream_id: str | None

    @property
    def text(self) -> str:
        return "".join(e.json()["delta"] for e in self.events if e.event == "token")

    @property
    def last_id(self) -> str:
        return [e.id for e in self.events if e.id][-1]

    @property
    def terminal(self) -> list[ServerSentEvent]:
        return [e for e in self.events if e.event in ("done", "error")]


def read(client: httpx.Client, path: str, stop_after_tokens: int | None = None, **headers: str) -> Read:
    """Read an SSE response (to its end, or hang up after N token events)."""
    events: list[ServerSentEvent] = []
    with connect_sse(client, "GET", path, headers=headers) as source:
        response = source.response
        if response.status_code != 200:
            response.read()
            return Read(response.status_code, [], client.cookies, None)
        tokens = 0
        for event in source.iter_sse():
            if not event.data:
                continue  # a heartbeat comment (httpx-sse carries the last id over to it)
            events.append(event)
            tokens += event.event == "token"
            if stop_after_tokens is not None and tokens >= stop_after_tokens:
                break
        return Read(200, events, client.cookies, response.headers.get("streamkit-stream-id"))


def owner_client(base_url: str, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30, headers=headers)


def stranger(base_url: str, **headers: str) -> httpx.Client:
    """Another client: its own (valid-looking) owner cookie."""
    client = owner_client(base_url, **headers)
    client.cookies.set(OWNER_COOKIE, secrets.token_urlsafe(24))
    return client


def expected_text(url: str, prompt: str, tokens: int) -> str:
    """The uninterrupted answer: the fake is deterministic (text depends only on the prompt)."""
    with owner_client(url) as client:
        full = read(client, stream_path(prompt, tokens, tokens_per_second=0, resumable=False))
    assert full.terminal and full.terminal[0].event == "done"
    return full.text


def records_of(directory: Path) -> set[str]:
    return {p.stem for p in directory.glob("*.json")}


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of one metric's samples matching `labels` on an app's /metrics."""
    total = 0.0
    for line in httpx.get(metrics_url(url), timeout=5).text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
