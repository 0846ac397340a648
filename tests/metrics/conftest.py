"""One app under gunicorn with two workers for the metrics tests, and a parsed /metrics scrape."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamkit.local import metrics_url, wait_until
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes

OBSERVABILITY = Path(__file__).resolve().parents[2] / "infra" / "observability"
PROMETHEUS_DIR = OBSERVABILITY / "prometheus"
RULE_FILES = (PROMETHEUS_DIR / "recording.yaml", PROMETHEUS_DIR / "alerts.yaml")
DASHBOARD = OBSERVABILITY / "grafana" / "streamkit.json"
WORKERS = 2
# Heartbeats this often, so a stream of a second or two carries a few pings.
PING_INTERVAL = 0.5
# The app tests' shortened send timeout (tests/app/conftest.py) applies here too.

SampleKey = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Exposition:
    """One scrape of /metrics: every sample by name and label set."""

    samples: Mapping[SampleKey, float]

    @classmethod
    def parse(cls, text: str) -> Exposition:
        samples: dict[SampleKey, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """Sum of every sample called `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def __add__(self, other: Exposition) -> Exposition:
        keys = self.samples.keys() | other.samples.keys()
        return Exposition({key: self.samples.get(key, 0.0) + other.samples.get(key, 0.0) for key in keys})

    def __sub__(self, before: Exposition) -> Exposition:
        """Increase since `before` (counters and histograms; gauges keep their current value)."""
        return Exposition({key: value - before.samples.get(key, 0.0) for key, value in self.samples.items()})


def scrape(url: str) -> Exposition:
    """One scrape of the metrics listener of the app at `url` (METRICS_PORT, not the public port)."""
    response = httpx.get(metrics_url(url), timeout=10)
    response.raise_for_status()
    return Exposition.parse(response.text)


Expected = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def expect(name: str, value: float, **labels: str) -> Expected:
    return {(name, tuple(sorted(labels.items()))): value}


def mismatches(expected: Expected, got: Exposition) -> list[str]:
    """Each expected value the scrape does not show exactly, as a readable line."""
    found = []
    for (name, labels), value in expected.items():
        actual = got.value(name, **dict(labels))
        if actual != value:
            found.append(f"{name}{dict(labels)}: expected {value}, scraped {actual}")
    return found


def wait_for(expected: Expected, url: str, before: Exposition, timeout: float) -> Exposition:
    """Scrape until the increase since `before` shows `expected` exactly (metrics are recorded just
    after the client saw the end of its stream); on timeout, fail with every mismatch."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not mismatches(expected, scrape(url) - before), timeout, 0.1, "expected metrics")
    delta = scrape(url) - before
    problems = mismatches(expected, delta)
    assert not problems, "\n".join(problems)
    return delta


# --- raw clients whose server side can be traced to a gunicorn worker ----------------------------


class RawStream:
    """One stream over a raw socket: stays open until closed, and knows its local port, so the
    worker that accepted it can be found."""

    def __init__(self, url: str, path: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        self.local_port: int = self.sock.getsockname()[1]
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        self.received = b""

    def read_until(self, marker: bytes) -> None:
        while marker not in self.received:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed before {marker!r}: {self.received[-300:]!r}")
            self.received += chunk

    def close(self) -> None:
        self.sock.close()


def workers_of(app: RunningApp) -> list[psutil.Process]:
    return psutil.Process(app.proc.pid).children()


def worker_of(stream: RawStream, workers: list[psutil.Process]) -> int | None:
    """PID of the worker holding the server side of `stream`'s connection."""
    for worker in workers:
        for conn in worker.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == stream.local_port:
                return worker.pid
    return None


def hold_on_every_worker(
    app: RunningApp, path: str, per_worker: int, limit: int
) -> tuple[list[RawStream], dict[int, int]]:
    """Open held streams (started, no token yet) one by one until every worker holds at least
    `per_worker` of them, or `limit` are open. Returns the streams and the count per worker PID.

    All workers accept from one listening socket, and on a quiet machine the same worker tends to
    win every accept. A worker that holds its share is therefore paused (SIGSTOP) until the others
    have theirs, so the next connections must go to them; held sockets are unaffected."""
    workers = workers_of(app)
    streams: list[RawStream] = []
    per_pid = {w.pid: 0 for w in workers}
    paused: list[int] = []
    try:
        while min(per_pid.values()) < per_worker and len(streams) < limit:
            stream = RawStream(app.url, path)
            streams.append(stream)
            stream.read_until(b"event: start")
            pid = worker_of(stream, workers)
            assert pid is not None, f"no worker holds the connection from port {stream.local_port}"
            per_pid[pid] += 1
            if per_pid[pid] >= per_worker and min(per_pid.values()) < per_worker:
                os.kill(pid, signal.SIGSTOP)
                paused.append(pid)
    except BaseException:
        for stream in streams:
            stream.close()
        raise
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    return streams, per_pid


@pytest.fixture(scope="module")
def metrics_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    """The app under gunicorn with two workers (multiprocess metrics), one per test module."""
    tmp = tmp_path_factory.mktemp("metrics-app")
    return start(module_processes, tmp, workers=WORKERS, PING_INTERVAL=str(PING_INTERVAL))
