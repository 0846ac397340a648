"""Client keys and stream budgets (issue #20): the app under gunicorn relaying to `streamkit fake-upstream`,
with an API_KEYS_FILE, real sockets on 127.0.0.1, and a real redis-server where replicas share limits."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from app.auth import digest_of
from app.limits import WINDOW_SECONDS
from streamkit import local
from streamkit.local import free_port, wait_until
from tests.conftest import Processes, RedisServer, start_redis
from tests.relay.conftest import API_KEY, FakeUpstream, app_env

T = TypeVar("T")

# Distinctive client keys: the hygiene test scans every log, metric and answer for them.
KEYS = {name: f"sk-client-{name}-{uuid.uuid4().hex}" for name in ("alpha", "beta", "gamma", "delta")}
MODEL = "fake-upstream"
MAX_STREAMS_PER_KEY = 2
TOKENS_PER_MINUTE = 400


def write_keys(path: Path, names: tuple[str, ...] = tuple(KEYS)) -> Path:
    lines = ["# name  sha256 of the key (tests/auth)"] + [f"{name}  {digest_of(KEYS[name]).hex()}" for name in names]
    path.write_text("\n".join(lines) + "\n")
    return path


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def rid(what: str = "auth") -> str:
    return f"{what}-{uuid.uuid4().hex[:12]}"


def keyed_env(upstream_url: str, keys_file: Path, **extra: str) -> dict[str, str]:
    """The relay's environment with client keys: app_env without its ALLOW_ANONYMOUS."""
    env = app_env(upstream_url, API_KEYS_FILE=str(keys_file), **extra)
    env.pop("ALLOW_ANONYMOUS")
    return env


@dataclass
class KeyedRelay:
    url: str
    upstream: FakeUpstream
    keys_file: Path
    processes: Processes


@pytest.fixture(scope="package")
def keyed_relay(package_processes: Processes) -> KeyedRelay:
    """One worker (the in-memory limits are per worker), MAX_STREAMS_PER_KEY and TOKENS_PER_MINUTE set.
    fake-upstream and the app start at once (the app does not call its upstream before a request)."""
    # Its own folder: under pytest-xdist a package fixture may be set up again in the same worker.
    directory = package_processes.directory / f"keyed-{uuid.uuid4().hex[:8]}"
    records = directory / "records"
    records.mkdir(parents=True)
    port = free_port()
    keys_file = write_keys(directory / "api-keys")
    upstream_url = f"http://127.0.0.1:{port}/v1"
    env = keyed_env(
        upstream_url, keys_file,
        MAX_STREAMS_PER_KEY=str(MAX_STREAMS_PER_KEY), TOKENS_PER_MINUTE=str(TOKENS_PER_MINUTE),
        UPSTREAM_READ_TIMEOUT="30",  # tests/relay's 1.5 s is about read timeouts; not the subject here
    )
    (fake, _), (_, url) = in_parallel(
        partial(local.start_fake_upstream, directory, {"FAKE_UPSTREAM_API_KEY": API_KEY,
                                                        "FAKE_RECORD_DIR": str(records)}, port),
        partial(package_processes.app, env),
    )
    package_processes.add(fake)
    return KeyedRelay(url, FakeUpstream(fake, upstream_url, records), keys_file, package_processes)


@pytest.fixture(scope="package")
def plain_app(package_processes: Processes) -> str:
    """The app on its fake LLM with none of the settings of issue #20 (no keys, no limits): controls."""
    return package_processes.app()[1]


def slow_stream_body(prompt: str = "hold", tokens: int = 200) -> dict[str, object]:
    """A chat completion stream that lasts (10 tokens/s) until the test closes it."""
    content = f"{prompt} fake.tokens={tokens} fake.tokens_per_second=10 fake.first_token_delay=0"
    return {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": content}]}


class OpenStream:
    """A streaming request held open (headers read) until closed."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str], body: dict[str, object]) -> None:
        self.request_id = headers.get("X-Request-ID", "")
        request = client.build_request("POST", url + "/v1/chat/completions", json=body, headers=headers)
        self.response = client.send(request, stream=True)
        self._lines: Iterator[str] | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    def first_event(self) -> str:
        # One line iterator for the stream's life: an abandoned httpx iterator is closed when collected,
        # and closing it closes the connection (the stream would no longer be held).
        if self._lines is None:
            self._lines = self.response.iter_lines()
        for line in self._lines:
            if line.startswith("data:"):
                return line
        return ""

    def close(self) -> None:
        self.response.close()


def open_stream(client: httpx.Client, url: str, name: str, what: str = "hold") -> OpenStream:
    return OpenStream(client, url, {**auth(name), "X-Request-ID": rid(what)}, slow_stream_body(what))


def error_of(response: httpx.Response) -> dict[str, object]:
    body = json.loads(response.read())
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])


@pytest.fixture(scope="package")
def redis_server(package_processes: Processes) -> RedisServer:
    return start_redis(package_processes)


def wait_for_window_room(seconds: float) -> None:
    """Start clear of the one-minute token window's edge, so a test's tokens land in one window."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < seconds:
        time.sleep(left + 0.05)


def in_parallel(*starts: Callable[[], T]) -> list[T]:
    """Start several processes at once (each start mostly waits for its process to serve)."""
    with ThreadPoolExecutor(len(starts)) as pool:
        return list(pool.map(lambda start: start(), starts))


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def wait_for(predicate: object, timeout: float) -> float:
    """Seconds until `predicate()` holds (polled every 50 ms); TimeoutError past `timeout`."""
    start = time.monotonic()
    wait_until(predicate, timeout, 0.05)  # type: ignore[arg-type]
    return time.monotonic() - start
