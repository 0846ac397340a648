"""Traefik's entry point `readTimeout` (default 60 s since v2.11.2): what it cuts and what it does not.

It is Go's `http.Server.ReadTimeout`: a deadline for reading the whole REQUEST, headers and body.
Measured on Traefik 3.7.15: once the request is in, the response may stream for as long as it likes,
so the kit keeps the 60 s default (it guards against slow-upload clients). A stream can still be cut
by the entry point's `writeTimeout` (tests/negative/traefik/write-timeout.yml) or by the
serversTransport `readTimeout` below the ping interval (tests/negative/traefik/read-timeout-below-ping.yml).
Here the shipped config runs with its request timeout shortened through the marked value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from app.fakellm import fake_text
from streamkit.probe.observe import observe
from streamkit.probe.verdict import is_terminal, is_token
from streamkit.proxies import PROXIES
from streamkit.proxies.substitute import Value
from tests.app.conftest import RunningApp
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import READ_TIMEOUT, Target, Tls, completion_body, proxy_values, stream_path

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]

# The entry point's request read timeout, shortened from the shipped 60 s (`# streamkit: request_read_timeout`).
REQUEST_READ_TIMEOUT = READ_TIMEOUT
# A stream three times longer than that (a token a second, pings in between).
TOKENS = int(3 * REQUEST_READ_TIMEOUT)
# An upload that sends a byte this often, for twice the timeout.
TRICKLE = 0.5


@pytest.fixture(scope="module")
def traefik(
    pinged_app: RunningApp, tls: Tls, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    proxy = installed(PROXIES["traefik"])
    values = proxy_values(proxy, pinged_app.url.removeprefix("http://"), tls)
    values["request_read_timeout"] = f"{REQUEST_READ_TIMEOUT:g}s"
    proc = module_processes.add(proxy.start(tmp_path_factory.mktemp("traefik"), values))
    yield Target(proxy=proxy, process=proc, app=pinged_app, url=f"http://{values['listen']}")


def test_request_read_timeout_does_not_cut_a_long_stream(traefik: Target) -> None:
    knobs: dict[str, Value] = {"prompt": "long", "tokens": TOKENS, "tokens_per_second": 1, "first_token_delay": 0}
    obs = observe(traefik.url + stream_path(**knobs), timeout=30)
    received = sum(1 for event in obs.events if is_token(event))
    assert obs.status == 200 and obs.error is None, f"HTTP {obs.status}, {obs.error}"
    assert received == TOKENS and is_terminal(obs.events[-1]), f"{received}/{TOKENS} tokens over {obs.ended_at} s"
    assert obs.ended_at is not None and obs.ended_at > 2 * REQUEST_READ_TIMEOUT


def upload(target: Target, seconds: float) -> str:
    """POST a non-streaming completion whose body trickles in over `seconds`; the outcome in one line."""
    body = httpx.Request("POST", "/", json=completion_body(False, 5)).content

    def trickle() -> Iterator[bytes]:
        deadline = time.monotonic() + seconds
        yield body[:-1]
        while time.monotonic() < deadline:
            time.sleep(TRICKLE)
            yield b" "
        yield body[-1:]

    try:
        response = httpx.post(
            target.url + "/v1/chat/completions",
            content=trickle(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code == 200:
        return "HTTP 200 " + response.json()["choices"][0]["message"]["content"]
    return f"HTTP {response.status_code}"


def test_request_read_timeout_cuts_a_slow_upload(traefik: Target) -> None:
    """The same timeout is live: a request body that takes longer than it is refused, with the 504
    Traefik 3.7 answers when its read of the request body times out (measured), while the same
    upload within the timeout gets its completion (the control: the refusal is the timeout's)."""
    within = upload(traefik, REQUEST_READ_TIMEOUT / 4)
    assert within == "HTTP 200 " + fake_text("compression", 5), f"an upload within the timeout failed: {within}"
    slow = upload(traefik, 2 * REQUEST_READ_TIMEOUT)
    assert slow == "HTTP 504", (
        f"a {2 * REQUEST_READ_TIMEOUT:g} s upload was not refused by the request read timeout: {slow}"
    )
