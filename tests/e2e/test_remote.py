"""The streaming contract against a deployed target instead of local processes.

`infra/k8s/kind/run-e2e.sh` deploys the app behind Envoy Gateway on kind and runs this module with
STREAMKIT_E2E_TARGET_URL set to the gateway's address; anyone can point it at a deployment of
the reference app (with EMIT_TIMESTAMPS=true and the built-in fake LLM). It runs every check that
needs only HTTP access: the ones that read the fake upstream's own records or need shortened
timeouts run in test_contract.py against local processes. Without the variable it skips: this
machine has no cluster.
"""

from __future__ import annotations

import os

import pytest

from app.settings import Settings
from streamkit.probe.observe import observe
from streamkit.probe.verdict import Expectations, assess
from tests.e2e.harness import CHECKS, MAX_LAG, Endpoint, stream_path

TARGET_URL = os.environ.get("STREAMKIT_E2E_TARGET_URL", "").rstrip("/")
PING_INTERVAL = float(os.environ.get("STREAMKIT_E2E_PING_INTERVAL", Settings().ping_interval))
REMOTE_CHECKS = (
    "incremental",
    "headers_first",
    "heartbeats",
    "uncompressed",
    "compression",
    "openai_sdk",
    "hides_metrics",
)

pytestmark = [
    pytest.mark.proxy,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not TARGET_URL,
        reason="no deployed target: set STREAMKIT_E2E_TARGET_URL "
        "(infra/k8s/kind/run-e2e.sh does, on a machine with Docker)",
    ),
]


@pytest.fixture(scope="module")
def remote() -> Endpoint:
    endpoint = Endpoint(url=TARGET_URL)
    # The deployed app pings at its own interval (15 s by default): the first token comes three
    # intervals late, so the heartbeats check needs pings during the wait (as in the local suite).
    knobs = {"prompt": "remote", "tokens": 10, "tokens_per_second": 10, "first_token_delay": 3 * PING_INTERVAL}
    observation = observe(endpoint.url + stream_path(**knobs), timeout=5 * PING_INTERVAL)
    endpoint.reports["contract"] = assess(observation, Expectations(max_lag=MAX_LAG, ping_interval=PING_INTERVAL))
    return endpoint


@pytest.mark.parametrize("name", REMOTE_CHECKS)
def test_remote_contract(remote: Endpoint, name: str) -> None:
    result = CHECKS[name](remote)  # type: ignore[arg-type]  # these checks need only an Endpoint
    assert result.ok, f"{TARGET_URL}: {name}: {result.detail}"
