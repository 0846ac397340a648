"""A client whose network vanishes (no FIN, no RST) stops the model within DEAD_PEER_TIMEOUT + 1 s,
in every window (issue 16, acceptance 1).

One namespace, one vanishing, all trials at once: the client program (tests/netns/client.py)
opens TRIALS streams per window to the app with the dead-peer socket options and as many to the
same app with them off (DEAD_PEER_TIMEOUT=0, the control). Once every stream is where its window
wants it (waiting for the first token; between tokens; the app's send blocked on a client that
stopped reading), the client's link goes down. The fake LLM's own record (FAKE_RECORD_DIR) says
when each generation was closed: with the options, within the bound (p95, tests/bounds.py); the
control's generations are all still running at 3 × the bound.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.fakellm import FakeRecord, load_record
from app.settings import Settings
from app.sockets import apply_to_listeners, dead_peer_options
from streamkit.local import Process, start_app, wait_until
from tests.bounds import MIN_TRIALS, assert_p95
from tests.conftest import Processes
from tests.netns.conftest import scenario_link
from tests.netns.netns import Link

PING_INTERVAL = 0.5
DEAD_PEER_TIMEOUT = 2.0
BOUND = DEAD_PEER_TIMEOUT + 1.0  # acceptance 1
TRIALS = MIN_TRIALS
# The app's own send timeout must not end the send-blocked window first (nor the control's).
SEND_TIMEOUT = 60.0

# window -> (client mode, SSE lines before "ready", path)
WINDOWS = {
    "first_token": ("read", 3, "/v1/chat/stream?prompt=w1&first_token_delay=600"),
    "between_tokens": ("read", 6, "/v1/chat/stream?prompt=w2&tokens=100000&tokens_per_second=4&first_token_delay=0"),
    "send_blocked": ("stall", 0, "/v1/chat/stream?prompt=w3&tokens=100000&tokens_per_second=0&first_token_delay=0"),
}


@dataclass
class Side:
    """One app (with or without the options) and the client streaming from it."""

    records: Path
    url: str
    clients: list[Process] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)  # request id -> client's local port

    def request_ids(self, window: str) -> list[str]:
        return [rid for rid in self.ports if rid.startswith(window)]


@dataclass
class Scenario:
    vanished_at: float
    on: Side
    off: Side
    link: Link


def _start_side(processes: Processes, link: Link, tmp: Path, name: str, dead_peer_timeout: str) -> Side:
    records = tmp / f"records-{name}"
    records.mkdir()
    env = {
        "PING_INTERVAL": str(PING_INTERVAL),
        "SEND_TIMEOUT": str(SEND_TIMEOUT),
        "DEAD_PEER_TIMEOUT": dead_peer_timeout,
        "FAKE_RECORD_DIR": str(records),
        "DRAIN_SECONDS": "0",  # teardown: the control's streams end at once
    }
    proc, url = start_app(tmp, env=env, host=link.host_addr)
    processes.add(proc)
    return Side(records, url)


def _open_streams(processes: Processes, link: Link, side: Side, tmp: Path, name: str, windows: list[str]) -> None:
    specs = []
    for window in windows:
        mode, lines, path = WINDOWS[window]
        for trial in range(TRIALS):
            rid = f"{window}-{name}-{trial}"
            side.ports[rid] = 0
            specs.append(f"{mode}:{lines}:{rid}:{path}")
    port = side.url.rsplit(":", 1)[1]
    argv = [sys.executable, "-m", "tests.netns.client", link.host_addr, port, *specs]
    side.clients.append(processes.add(link.process(f"client-{name}-{windows[0]}", argv, tmp).start()))


def _ready(side: Side) -> bool:
    for client in side.clients:
        for line in client.logs(tail=100_000).splitlines():
            if line.startswith("ready "):
                rid, port = line.split()[1:3]
                side.ports[rid] = int(port)
    return all(side.ports.values())


@pytest.fixture(scope="module")
def scenario(
    netns_ready: None, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("dead-client")
    with scenario_link(module_processes) as link:
        with ThreadPoolExecutor(2) as pool:  # start both apps at once
            on, off = pool.map(
                lambda args: _start_side(module_processes, link, tmp, *args),
                [("on", str(DEAD_PEER_TIMEOUT)), ("off", "0")],
            )
        # Streams that wait for a token first; the flooding ones that stop reading last, right
        # before the vanishing: their sends block on a full buffer as it goes down (with the
        # options, a receive window shut for TCP_USER_TIMEOUT is dropped even without vanishing:
        # Linux counts zero-window probes against it, so a later vanishing would test nothing).
        for windows in (["first_token", "between_tokens"], ["send_blocked"]):
            for name, side in (("on", on), ("off", off)):
                _open_streams(module_processes, link, side, tmp, name, windows)
            wait_until(lambda: _ready(on) and _ready(off), 30, 0.1, f"streams ready: {windows}")
        yield Scenario(link.vanish(), on, off, link)


def _close_delays(scenario: Scenario, window: str, timeout: float) -> list[float]:
    """Seconds from the client vanishing to its generation closed."""
    side = scenario.on
    delays = []
    for rid in side.request_ids(window):
        remaining = max(0.1, scenario.vanished_at + timeout - time.time())
        found = wait_until(lambda rid=rid: load_record(side.records, rid), remaining, 0.05, f"record {rid}")
        assert isinstance(found, FakeRecord) and found.closed_at is not None
        assert not found.completed, rid
        delays.append(found.closed_at - scenario.vanished_at)
    return delays


@pytest.mark.parametrize("window", list(WINDOWS))
def test_vanished_client_closes_the_upstream_within_the_bound(scenario: Scenario, window: str) -> None:
    delays = _close_delays(scenario, window, timeout=3 * BOUND)
    assert len(delays) == TRIALS
    value = assert_p95(delays, BOUND, f"vanished client, {window}: link down to upstream closed")
    print(f"{window}: p95 {value:.2f} s, max {max(delays):.2f} s (bound {BOUND} s)")


def test_control_without_socket_options_runs_past_three_bounds(scenario: Scenario) -> None:
    """The same app with DEAD_PEER_TIMEOUT=0: every generation still runs 3 × the bound later."""
    wait_until(lambda: time.time() >= scenario.vanished_at + 3 * BOUND, 3 * BOUND + 1, 0.1, "3 × the bound")
    still_running = [rid for rid in scenario.off.ports if load_record(scenario.off.records, rid) is None]
    assert len(still_running) == len(WINDOWS) * TRIALS, sorted(set(scenario.off.ports) - set(still_running))


def test_accepted_sockets_inherit_the_listener_options() -> None:
    """Linux copies TCP_USER_TIMEOUT and keepalive from the listener to each accepted socket,
    which is why setting them once in gunicorn's arbiter covers every connection."""
    settings = Settings(ping_interval=PING_INTERVAL, dead_peer_timeout=DEAD_PEER_TIMEOUT)
    options = dead_peer_options(settings)
    assert options
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        apply_to_listeners([listener], settings)
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            with accepted:
                for level, option, value in options:
                    assert accepted.getsockopt(level, option) == value, (level, option)
    with socket.socket() as plain:  # the control: a socket nobody set them on
        assert plain.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
