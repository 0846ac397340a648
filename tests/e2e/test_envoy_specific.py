"""Envoy's route timeout: a deadline on the WHOLE response (15 s unless set), not on silence.

The naive route (tests/negative/envoy/naive.yaml, no `timeout`) cuts a stream that is still flowing,
after the 200 was sent; the shipped route (`timeout: 0s`) carries the same stream to its end. The
default is the point here, so nothing is shortened: both streams run side by side (one ~17 s test).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from streamkit.probe.observe import Observation, observe
from streamkit.probe.verdict import is_terminal, is_token
from streamkit.proxies import PROXIES
from streamkit.proxies.substitute import Value
from tests.app.conftest import RunningApp
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import CUT_EARLY, CUT_LATE, Tls, start_target, stream_path

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]

NAIVE = Path(__file__).resolve().parents[1] / "negative" / "envoy" / "naive.yaml"
# Envoy's default RouteAction.timeout
# https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#envoy-v3-api-field-config-route-v3-routeaction-timeout
DEFAULT_ROUTE_TIMEOUT = 15.0
# A stream that keeps flowing (a token a second, pings in between) for longer than that.
TOKENS = 17
LONG_STREAM: dict[str, Value] = {"prompt": "long", "tokens": TOKENS, "tokens_per_second": 1, "first_token_delay": 0}


def tokens(obs: Observation) -> int:
    return sum(1 for event in obs.events if is_token(event))


def test_default_route_timeout_cuts_a_flowing_stream_shipped_route_does_not(
    pinged_app: RunningApp, tls: Tls, processes: Processes, tmp_path: Path
) -> None:
    envoy = installed(PROXIES["envoy"])
    shipped = start_target(envoy, tmp_path / "shipped", pinged_app, tls, label="shipped")
    processes.add(shipped.process)
    naive = start_target(envoy, tmp_path / "naive", pinged_app, tls, override=NAIVE, label="naive")
    processes.add(naive.process)

    with ThreadPoolExecutor(2) as pool:
        running = [
            pool.submit(observe, target.url + stream_path(**LONG_STREAM), timeout=60) for target in (shipped, naive)
        ]
        full, cut = (future.result() for future in running)

    assert full.status == 200 and full.error is None, f"shipped route: HTTP {full.status}, {full.error}"
    assert tokens(full) == TOKENS and is_terminal(full.events[-1]), (
        f"shipped route: {tokens(full)}/{TOKENS} tokens, last event {full.events[-1].event!r}"
    )

    assert cut.status == 200, f"naive route: HTTP {cut.status} (the cut must come after the headers)"
    assert cut.error is not None and tokens(cut) < TOKENS, f"naive route not cut: {tokens(cut)}/{TOKENS} tokens"
    assert cut.ended_at is not None
    assert DEFAULT_ROUTE_TIMEOUT - CUT_EARLY <= cut.ended_at <= DEFAULT_ROUTE_TIMEOUT + CUT_LATE, (
        f"naive route cut at {cut.ended_at:.2f} s, not at Envoy's {DEFAULT_ROUTE_TIMEOUT:g} s default"
    )
