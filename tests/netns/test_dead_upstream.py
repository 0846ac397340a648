"""An upstream whose network vanishes (no FIN, no RST) ends the stream with one `upstream_timeout`
error event and a closed upstream socket within UPSTREAM_READ_TIMEOUT + 1 s (issue 16,
acceptance 3), in both windows: waiting for the first token, and between tokens.

`streamkit fake-upstream` runs in its own namespace; the app (host side) relays it. The control is
the same app with a long read timeout (and the dead-peer options off): at 3 × the bound its
streams have no terminal event yet and their upstream connections are still established.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from streamkit.local import Process, free_port, start_app, wait_serving, wait_until
from streamkit.probe.observe import Observation, observe
from tests.bounds import MIN_TRIALS, assert_p95
from tests.conftest import Processes
from tests.netns.conftest import scenario_link
from tests.netns.netns import Link, tcp_connections

UPSTREAM_READ_TIMEOUT = 2.0
BOUND = UPSTREAM_READ_TIMEOUT + 1.0  # acceptance 3
CONTROL_PER_WINDOW = 2
# Prompts with the fake upstream's knobs (streamkit/fake_upstream.py).
WINDOWS = {
    "first_token": "fake.first_token_delay=600",
    "between_tokens": "fake.tokens=100000 fake.tokens_per_second=4 fake.first_token_delay=0",
}
ESTABLISHED = 1


@dataclass
class Relay:
    url: str
    upstream: tuple[str, int]
    results: dict[str, Observation] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    def open(self, window: str, count: int) -> None:
        for i in range(count):
            name = f"{window}-{i}"
            prompt = quote(f"{name} {WINDOWS[window]}")
            thread = threading.Thread(target=self._observe, args=(name, f"{self.url}/v1/chat/stream?prompt={prompt}"))
            thread.start()
            self.threads.append(thread)

    def _observe(self, name: str, url: str) -> None:
        self.results[name] = observe(url, timeout=60)

    def upstream_connections(self) -> int:
        return sum(1 for state in tcp_connections(remote=self.upstream) if state == ESTABLISHED)


@dataclass
class Scenario:
    vanished_at: float
    relay: Relay
    control: Relay


def _upstream(processes: Processes, link: Link, tmp: Path, name: str) -> tuple[Process, tuple[str, int]]:
    port = free_port()
    argv = [sys.executable, "-m", "streamkit.cli", "fake-upstream", "--host", link.ns_addr, "--port", str(port)]
    return processes.add(link.process(f"upstream-{name}", argv, tmp).start()), (link.ns_addr, port)


def _relay(processes: Processes, tmp: Path, upstream: tuple[str, int], env: dict[str, str]) -> Relay:
    proc, url = start_app(
        tmp,
        env={
            "UPSTREAM_BASE_URL": f"http://{upstream[0]}:{upstream[1]}/v1",
            "UPSTREAM_MODEL": "fake-upstream",
            "ALLOW_ANONYMOUS": "true",  # a relay without client keys (issue 20: tests/auth covers keys)
            "PING_INTERVAL": "0.5",
            "DRAIN_SECONDS": "0",
            **env,
        },
    )
    processes.add(proc)
    return Relay(url, upstream)


@pytest.fixture(scope="module")
def scenario(
    netns_ready: None, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("dead-upstream")
    with scenario_link(module_processes) as link:
        started = [_upstream(module_processes, link, tmp, name) for name in ("on", "off")]
        envs = [
            # The read timeout, not the upstream's keepalive, decides here.
            {"UPSTREAM_READ_TIMEOUT": str(UPSTREAM_READ_TIMEOUT), "DEAD_PEER_TIMEOUT": "30"},
            {"UPSTREAM_READ_TIMEOUT": "60", "DEAD_PEER_TIMEOUT": "0"},  # the control
        ]
        with ThreadPoolExecutor(2) as pool:  # both apps boot while the upstreams do
            booting = pool.map(lambda i: _relay(module_processes, tmp, started[i][1], envs[i]), range(2))
            for proc, (host, port) in started:
                wait_serving(proc, f"http://{host}:{port}/v1/models", 20)
            relay, control = booting
        # Between tokens first; then the first-token ones, right before the vanishing: their read
        # timeout runs from the request (a vanished upstream and a slow one look the same until
        # a byte is due), so any that time out before the link goes down are within the bound.
        opened = 0
        for window in reversed(WINDOWS):
            relay.open(window, MIN_TRIALS)
            control.open(window, CONTROL_PER_WINDOW)
            opened += MIN_TRIALS + CONTROL_PER_WINDOW
            wait_until(
                lambda opened=opened, window=window: (
                    relay.upstream_connections() + control.upstream_connections() == opened
                    or (window == "first_token" and any(name.startswith(window) for name in relay.results))
                ),
                15,
                0.05,
                f"{window} streams open",
            )
            ended = sorted(name for name in relay.results if not name.startswith("first_token"))
            assert not ended, f"streams ended before the upstream vanished: {ended}"
        yield Scenario(link.vanish(), relay, control)


@pytest.mark.parametrize("window", list(WINDOWS))
def test_vanished_upstream_ends_with_upstream_timeout(scenario: Scenario, window: str) -> None:
    relay = scenario.relay
    for thread in relay.threads:
        thread.join(3 * BOUND)
    delays = []
    for name, obs in relay.results.items():
        if not name.startswith(window):
            continue
        terminal = [e for e in obs.events if e.event in ("done", "error")]
        assert len(terminal) == 1, (name, obs.error, [e.event for e in obs.events[-3:]])
        assert terminal[0].json()["error"]["type"] == "upstream_timeout", (name, terminal[0].data)
        delays.append(terminal[0].arrival_unix - scenario.vanished_at)
    assert len(delays) == MIN_TRIALS
    assert_p95(delays, BOUND, f"vanished upstream, {window}: link down to the upstream_timeout event")
    # ... and the app closed its side of every upstream connection.
    assert relay.upstream_connections() == 0


def test_control_with_a_long_read_timeout_is_still_waiting(scenario: Scenario) -> None:
    wait_until(lambda: time.time() >= scenario.vanished_at + 3 * BOUND, 3 * BOUND + 1, 0.1, "3 × the bound")
    assert scenario.control.results == {}  # no stream has ended
    assert scenario.control.upstream_connections() == len(WINDOWS) * CONTROL_PER_WINDOW
