"""HAProxy 2.6 and a client that leaves: how the app's heartbeat bounds the time the upstream keeps running.

HAProxy 2.6 does not watch the client connection while it relays a response (neither `option
abortonclose`, `http-server-close`, `httpclose`, `nolinger` nor `timeout client-fin` change this, and
an HTTP/2 client is no different; measured). It learns that the client left when a write fails: the
first write after the client closed draws a TCP reset, the second fails, and only then does HAProxy
close the connection to the app, which cancels the upstream. So the delay is bounded by the app's
writes: with pings every P seconds, at most 2 x P; with a silent upstream and no pings, unbounded
(until tokens flow again). The shipped config runs here with its own (1 h) timeouts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamkit.probe.observe import observe
from streamkit.proxies import PROXIES
from streamkit.proxies.substitute import Value
from tests.app.conftest import RunningApp
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import PING_INTERVAL, Target, Tls, check_disconnect, proxy_values, request_id, stream_path

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]

# The write that fails is the second after the client left: at most two ping intervals later.
WRITES_TO_NOTICE = 2
# Timer granularity plus a busy shared host (2 cores, several test runs at once).
SLACK = 0.6
BOUND = WRITES_TO_NOTICE * PING_INTERVAL + SLACK
# The upstream goes silent right after the second token, for this long (well beyond BOUND).
STALL = 4.0


def _shipped(app: RunningApp, tls: Tls, processes: Processes, workdir: Path) -> Target:
    """The shipped config unchanged but for addresses and certificates (its timeouts stay 1 h)."""
    proxy = installed(PROXIES["haproxy"])
    values = proxy_values(proxy, app.url.removeprefix("http://"), tls)
    values.pop("read_timeout")
    proc = processes.add(proxy.start(workdir, values, label=workdir.name))
    return Target(proxy=proxy, process=proc, app=app, url=f"http://{values['listen']}")


@pytest.fixture(scope="module")
def pinged(
    pinged_app: RunningApp, tls: Tls, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    yield _shipped(pinged_app, tls, module_processes, tmp_path_factory.mktemp("pinged"))


@pytest.fixture(scope="module")
def silent(
    silent_app: RunningApp, tls: Tls, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    yield _shipped(silent_app, tls, module_processes, tmp_path_factory.mktemp("silent"))


def upstream_open_after_hangup(target: Target) -> tuple[float, bool]:
    """Hang up after two tokens while the upstream is silent; return (seconds until the fake
    upstream was closed, whether it ran to completion)."""
    rid = request_id("haproxy-hangup")
    knobs: dict[str, Value] = {"prompt": "hangup", "tokens": 6, "tokens_per_second": 10, "first_token_delay": 0}
    url = target.url + stream_path(**knobs, stall_at=2, stall_seconds=STALL)
    obs = observe(url, headers={"X-Request-ID": rid}, close_after_events=3)  # start + 2 tokens
    assert obs.status == 200 and obs.closed_early, f"HTTP {obs.status}, error {obs.error}"
    assert obs.started_unix is not None and obs.ended_at is not None
    record = target.app.record(rid, timeout=STALL + 10)
    assert record.closed_at is not None
    return record.closed_at - (obs.started_unix + obs.ended_at), record.completed


def test_disconnect_while_tokens_flow(pinged: Target) -> None:
    """The generic check: tokens flowing every 100 ms are the writes that reveal the hang-up."""
    result = check_disconnect(pinged)
    assert result.ok, result.detail


def test_heartbeat_bounds_disconnect_while_upstream_silent(pinged: Target) -> None:
    delay, completed = upstream_open_after_hangup(pinged)
    assert not completed, "the upstream ran to completion: the hang-up never reached it"
    assert delay <= BOUND, f"upstream closed {delay:.2f} s after the hang-up; bound {BOUND:.2f} s (2 pings + slack)"


def test_without_pings_a_silent_upstream_outlives_the_hangup(silent: Target) -> None:
    """The other side of the bound (and its negative control): no pings, nothing is written during
    the stall, so the upstream stays open until its tokens flow again."""
    delay, _ = upstream_open_after_hangup(silent)
    assert delay > BOUND, f"closed {delay:.2f} s after the hang-up: within {BOUND:.2f} s even without pings"
    assert delay >= STALL - 1.0, f"closed {delay:.2f} s after the hang-up, before the {STALL:g} s stall ended"
