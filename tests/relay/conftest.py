"""The relay under test: the app under gunicorn pointed at `streamkit fake-upstream`, both real
processes on 127.0.0.1, shared by the whole package (started once, stopped by PID)."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.fakellm import FakeRecord, load_record
from streamkit import local
from streamkit.local import Process, free_port, http_ready, wait_until
from tests.conftest import Processes

# A distinctive upstream key: every relay test runs with it, and the hygiene test scans every
# response, event, log line and metric label for it.
API_KEY = f"sk-streamkit-relay-{uuid.uuid4().hex}-DO-NOT-LEAK"
MODEL = "fake-upstream"
# A second model fake-upstream serves (as vLLM serves LoRA adapters next to the base model).
ADAPTER = "fake-upstream-lora"

# Shortened timings (the documented substitution: the app's environment variables).
PING_INTERVAL = 1.0
SEND_TIMEOUT = 3.0  # long enough to close a blocked client on purpose before it fires
READ_TIMEOUT = 1.5  # UPSTREAM_READ_TIMEOUT: silence allowed between upstream reads
CONNECT_TIMEOUT = 0.5  # UPSTREAM_CONNECT_TIMEOUT
CONNECT_RETRIES = 2  # UPSTREAM_CONNECT_RETRIES


def app_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "UPSTREAM_BASE_URL": base_url,
        "UPSTREAM_API_KEY": API_KEY,
        "UPSTREAM_MODEL": MODEL,
        "UPSTREAM_READ_TIMEOUT": str(READ_TIMEOUT),
        "UPSTREAM_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "UPSTREAM_CONNECT_RETRIES": str(CONNECT_RETRIES),
        "PING_INTERVAL": str(PING_INTERVAL),
        "SEND_TIMEOUT": str(SEND_TIMEOUT),
        "ALLOW_ANONYMOUS": "true",  # issue #20: these tests are about relaying, not client keys (tests/auth)
        # Off, so SEND_TIMEOUT decides for a client that stops reading (with the dead-peer options
        # the kernel drops it first: docs/timeouts.md "Dead peers").
        "DEAD_PEER_TIMEOUT": "0",
        **extra,
    }


@dataclass
class FakeUpstream:
    proc: Process
    url: str  # base URL, ending in /v1
    records: Path

    def record(self, request_id: str, timeout: float = 10.0) -> FakeRecord:
        """fake-upstream's own record of a request, once its connection has ended."""
        found = wait_until(lambda: load_record(self.records, request_id), timeout, what=f"record {request_id}")
        assert isinstance(found, FakeRecord)
        return found

    def saw(self, request_id: str) -> bool:
        """fake-upstream has started generating for this request (its log says so)."""
        return f"request {request_id} " in self.proc.log_path.read_text(errors="replace")

    def received(self, request_id: str) -> dict[str, Any]:
        """What fake-upstream received for this request: body, headers, whether it had the key."""
        path = self.records / f"{request_id}.request.json"
        wait_until(path.exists, 10, what=f"request record {request_id}")
        found: dict[str, Any] = json.loads(path.read_text())
        return found

    def requests_for(self, request_id: str) -> int:
        return self.proc.log_path.read_text(errors="replace").count(f"request {request_id} ")


@dataclass
class Relay:
    """The app relaying to fake-upstream (`processes`: everything the package started)."""

    app: Process
    url: str
    upstream: FakeUpstream
    processes: Processes


def start_fake_upstream(processes: Processes, directory: Path) -> FakeUpstream:
    records = directory / f"records-{uuid.uuid4().hex[:8]}"
    records.mkdir(parents=True)
    env = {"FAKE_UPSTREAM_API_KEY": API_KEY, "FAKE_RECORD_DIR": str(records)}
    proc, url = local.start_fake_upstream(directory, env=env, extra_args=["--model", f"{MODEL},{ADAPTER}"])
    processes.add(proc)
    return FakeUpstream(proc, url, records)


@pytest.fixture(scope="package")
def relay(package_processes: Processes) -> Relay:
    upstream = start_fake_upstream(package_processes, package_processes.directory)
    app, url = package_processes.app(env=app_env(upstream.url))
    return Relay(app, url, upstream, package_processes)


class DeadUpstream:
    """A port on 127.0.0.1 that either refuses connections (nothing listens) or never accepts
    them (a listener whose accept queue is full: Linux drops the SYN, so connects time out)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._sockets: list[socket.socket] = []

    def refuse(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def blackhole(self) -> None:
        if self._sockets:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(0)
        self._sockets = [listener]
        for _ in range(4):  # fill the accept queue
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._sockets.append(filler)


@dataclass
class DeadRelay:
    app: Process
    url: str
    upstream: DeadUpstream


@pytest.fixture(scope="package")
def dead_relay(package_processes: Processes) -> Iterator[DeadRelay]:
    """The app pointed at a dead upstream; each test picks refuse() or blackhole()."""
    upstream = DeadUpstream()
    app, url = package_processes.app(env=app_env(upstream.url))
    try:
        yield DeadRelay(app, url, upstream)
    finally:
        upstream.refuse()


@dataclass
class NaiveRelay:
    """tests/relay/naive_relay.py (the negative control) relaying to fake-upstream."""

    proc: Process
    url: str
    upstream: FakeUpstream


@pytest.fixture(scope="package")
def naive_relay(package_processes: Processes, relay: Relay) -> NaiveRelay:
    port = free_port()
    env = app_env(relay.upstream.url)
    proc = package_processes.add(
        Process(
            name="naive-relay",
            argv=[sys.executable, "-m", "uvicorn", "tests.relay.naive_relay:app", "--port", str(port)],
            log_path=package_processes.directory / f"naive-relay-{port}.log",
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        ).start()
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: not proc.alive() or http_ready(url + "/")(), 20, 0.05, "naive relay")
    assert proc.alive(), proc.logs()
    return NaiveRelay(proc, url, relay.upstream)


def rid() -> str:
    return "relay-" + uuid.uuid4().hex[:12]
