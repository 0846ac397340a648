"""The streaming contract (README "The streaming contract") through every proxy's real binary and SHIPPED config.

Only ports, addresses, certificate paths and the read timeout are substituted, through the values
the config marks with `# streamkit: KEY` (streamkit/proxies/substitute.py). The app runs under
gunicorn with emit timestamps on; the probe (`streamkit.probe.verdict.assess`) is the instrument.
Each check here has a negative control in tests/e2e/test_negative.py that the same check catches.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.fakellm import fake_tokens
from streamkit.probe.observe import observe
from streamkit.probe.verdict import assess
from streamkit.proxies import PROXIES
from streamkit.proxies.base import ProxyDef
from tests.app.conftest import RunningApp
from tests.conftest import Processes
from tests.e2e.conftest import installed, need
from tests.e2e.harness import (
    CHECKS,
    CONTRACT,
    CONTRACT_STREAM,
    EXPECT,
    STRIP_HINTS,
    STRIP_HINTS_UNCHUNKED,
    Target,
    Tls,
    check_cut_at_timeout,
    check_survives_silence,
    start_hop,
    start_target,
    stream_path,
)

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]


# disconnect_silent runs on the app with pings off: test_client_disconnect_while_upstream_silent.
PINGED_CHECKS = [name for name in CONTRACT if name != "disconnect_silent"]


@pytest.mark.parametrize("check", PINGED_CHECKS)
def test_contract(target: Target, check: str) -> None:
    capability = CONTRACT[check]
    if capability:
        need(target.proxy, capability)
    result = CHECKS[check](target)
    assert result.ok, f"{target.proxy.name}: {check}: {result.detail}"


def test_silent_upstream_without_pings_is_cut_at_read_timeout(silent_target: Target) -> None:
    """The other side of the timeout: pings off, the same stream is cut near the (shortened) limit.
    This is also the negative control of `survives_silence`: the same check fails without pings."""
    need(silent_target.proxy, "idle_timeout")
    survived = check_survives_silence(silent_target)
    assert survived.ok is False, f"not caught without pings: {survived.detail}"
    cut = check_cut_at_timeout(silent_target)
    assert cut.ok, cut.detail


def test_client_disconnect_while_upstream_silent(silent_target: Target) -> None:
    """No pings and a stalled upstream: nothing flows, so only the proxy's watch on the client helps."""
    need(silent_target.proxy, "disconnect_silent")
    result = CHECKS["disconnect_silent"](silent_target)
    assert result.ok, result.detail


@pytest.mark.parametrize("hop", [STRIP_HINTS, STRIP_HINTS_UNCHUNKED])
@pytest.mark.parametrize("name", sorted(PROXIES))
def test_streams_without_app_hints(
    name: str, hop: str, pinged_app: RunningApp, tls: Tls, processes: Processes, tmp_path: Path
) -> None:
    """The app's hints (`X-Accel-Buffering: no` from sse-starlette, `Cache-Control: no-transform`) and
    its chunked framing would hide a proxy that buffers or compresses by default. Behind a hop that
    drops the hints (tests/e2e/strip-hints.conf), and one that also drops the framing, the shipped
    config must still stream, uncompressed."""
    proxy: ProxyDef = installed(PROXIES[name])
    need(proxy, "incremental")
    installed(PROXIES["nginx"])  # runs the hop
    back = start_hop(hop, tmp_path / "hop", pinged_app, tls)
    processes.add(back.process)
    front = start_target(proxy, tmp_path / "front", pinged_app, tls, upstream=back.url.removeprefix("http://"))
    processes.add(front.process)
    report = assess(observe(front.url + stream_path(**CONTRACT_STREAM)), EXPECT)
    headers = report.observation.headers
    assert report.check("status").ok, report.check("status").detail
    assert "x-accel-buffering" not in headers, "the hint reached the client: the test proves nothing"
    assert "no-transform" not in headers.get("cache-control", ""), "no-transform reached the client"
    for check in ("incremental", "headers_first", "uncompressed"):
        assert report.check(check).ok, f"{check}: {report.check(check).detail}"


# A prompt that is not ASCII gets app.fakellm.UNICODE_WORDS: CJK, emoji sequences, combining marks,
# each word split over several events at code points that are not character boundaries.
NON_ASCII_PROMPT = "ストリーミング, s'il vous plaît"


def test_non_ascii_text_streams_byte_exact(target: Target) -> None:
    """The raw bytes of every token event carry the fake's UTF-8 unescaped, and the deltas join to
    exactly its text: no hop re-encodes, escapes, or splits a character between events."""
    tokens = 40
    url = target.url + stream_path(prompt=NON_ASCII_PROMPT, tokens=tokens, tokens_per_second=50, first_token_delay=0)
    with httpx.Client(timeout=30) as client, client.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        raw = b"".join(response.iter_raw())
    assert "content-encoding" not in response.headers, "compressed: the bytes below would be meaningless"
    events = [block for block in raw.split(b"\n\n") if b"event: token" in block]
    deltas = [
        json.loads(line.removeprefix(b"data: "))
        for e in events
        for line in e.split(b"\n")
        if line.startswith(b"data: ")
    ]
    expected = fake_tokens(NON_ASCII_PROMPT, tokens)
    assert [d["delta"] for d in deltas] == expected
    for piece in expected:
        assert piece.encode() in raw, f"{piece!r} is not in the stream as UTF-8 bytes (escaped or re-encoded)"
    assert not "".join(expected).isascii(), "the fake answered in ASCII: this test would prove nothing"
