"""The probe's verdict against real servers: the reference app must pass every check, and each
defect of the naive server (a negative control) must fail exactly the check made for it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from streamkit.local import free_port
from streamkit.probe.observe import Observation, observe
from streamkit.probe.verdict import CHECK_NAMES, Expectations, Report, assess, bursts, percentile
from tests.probe.conftest import APP_PING_INTERVAL, NAIVE_PING_INTERVAL, PACED_NO_STAMPS

# Per-event lag limit for these tests: generous, because the host is shared and busy; a
# buffered stream here lags by its whole length (>= 0.9 s), well above it.
MAX_LAG = 0.5
APP = Expectations(max_lag=MAX_LAG, ping_interval=APP_PING_INTERVAL)
NAIVE = Expectations(max_lag=MAX_LAG, ping_interval=NAIVE_PING_INTERVAL)
CHAT = {"model": "streamkit-fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
TOKENS = 12
PROBE_READ_TIMEOUT = 0.8  # shorter than the naive server's 3 s silence, longer than its 0.1 s pacing


def failed(report: Report) -> set[str]:
    return {c.name for c in report.checks if c.ok is False}


def assert_streams(report: Report) -> None:
    details = "\n".join(f"{c.name}: {c.ok} {c.detail}" for c in report.checks)
    assert report.ok, details
    assert report.headline == "STREAMS"
    judged = {c.name for c in report.checks if c.ok is True}
    assert judged == set(CHECK_NAMES) - {"http_version"}, details  # every contract check judged, none skipped


# --- the reference app passes --------------------------------------------------------------


def test_app_event_stream_passes_with_heartbeats_during_a_stall(app_url: str) -> None:
    # A 1.2 s stall mid-stream: heartbeats must fill it (PING_INTERVAL 0.5 s).
    url = f"{app_url}/v1/chat/stream?prompt=hi&tokens={TOKENS}&tokens_per_second=20&stall_at=6&stall_seconds=1.2"
    report = assess(observe(url), APP)
    assert_streams(report)
    obs = report.observation
    assert [e.event for e in obs.events] == ["start"] + ["token"] * TOKENS + ["done"]  # comments are not events
    assert len(obs.pings) >= 2
    s = report.stats
    assert s["tokens"] == TOKENS
    assert s["time_to_headers"] is not None and s["time_to_first_token"] is not None
    assert s["time_to_headers"] < s["time_to_first_token"]
    assert s["lag_max"] is not None and s["lag_max"] < MAX_LAG
    assert s["gap_max"] is not None and s["gap_max"] >= 1.0  # the stall shows as the largest gap


@pytest.mark.parametrize(
    ("path", "body", "terminal"),
    [
        ("/v1/chat/completions", CHAT, "[DONE]"),
        ("/v1/responses", {"model": "streamkit-fake", "stream": True, "input": "hi"}, "response.completed"),
    ],
)
def test_app_openai_streams_pass(app_url: str, path: str, body: dict[str, object], terminal: str) -> None:
    report = assess(observe(app_url + path, method="POST", json_body={**body, "fake": {"tokens": TOKENS}}), APP)
    assert_streams(report)
    assert report.stats["tokens"] == TOKENS
    assert terminal in report.check("terminal_event").detail


FAIL_AT = {"tokens": 6, "fail_at": 3}  # the fake fails after 3 tokens


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/stream?prompt=hi&tokens=6&fail_at=3", None),
        ("/v1/chat/completions", {**CHAT, "fake": FAIL_AT}),
        ("/v1/responses", {"model": "streamkit-fake", "stream": True, "input": "hi", "fake": FAIL_AT}),
    ],
)
def test_in_band_error_is_a_terminal_event(app_url: str, path: str, body: dict[str, object] | None) -> None:
    # A generation that fails mid-stream still ends the stream properly: not judged as cut.
    obs = observe(app_url + path, method="POST" if body else "GET", json_body=body)
    terminal = assess(obs, APP).check("terminal_event")
    assert terminal.ok is True, terminal.detail
    assert "in-band error" in terminal.detail


def test_app_error_status_is_reported(app_url: str) -> None:
    report = assess(observe(f"{app_url}/v1/chat/stream"), APP)  # no prompt: 400 with an OpenAI error body
    assert not report.ok
    assert report.headline == "NO STREAM"
    assert "HTTP 400" in report.check("status").detail and "prompt" in report.check("status").detail
    assert report.connected


def test_early_close_is_not_judged_as_cut(app_url: str) -> None:
    report = assess(observe(f"{app_url}/v1/chat/stream?prompt=hi", close_after_events=3), APP)
    assert report.check("terminal_event").ok is None
    assert report.observation.closed_early


def test_unreachable_server() -> None:
    report = assess(observe(f"http://127.0.0.1:{free_port()}/", timeout=5), APP)
    assert not report.connected and not report.ok
    assert report.check("status").detail.startswith("could not connect")


# --- negative controls: the naive server's defects --------------------------------------------


@pytest.fixture(scope="module")
def naive(naive_url: str) -> Callable[[str], Observation]:
    """Observe `/s?QUERY` on the naive server, once per query in this module."""
    return cache(lambda query: observe(f"{naive_url}/s?{query}"))


def test_naive_server_without_defects_passes(naive: Callable[[str], Observation]) -> None:
    # The control for the controls: each failure below comes from the one defect switched on.
    assert_streams(assess(naive(""), NAIVE))


@pytest.mark.parametrize(
    ("query", "expect_failed", "headline"),
    [
        ("buffer=1&n=10", {"incremental", "headers_first"}, "BUFFERED"),
        ("buffer=1&n=10&stamps=0", {"incremental"}, "BUFFERED"),  # burst detection without emitted_at
        ("gzip=1", {"uncompressed"}, "COMPRESSED"),
        ("cut=1", {"terminal_event"}, "CUT"),
        ("pings=0&silence=1.2", {"heartbeats"}, "NO HEARTBEATS"),
        # Header hygiene is advice: reported (ok False, advice), the stream still STREAMS.
        ("headers=0", {"cache_control"}, "STREAMS"),
    ],
)
def test_each_defect_fails_its_check(
    naive: Callable[[str], Observation], query: str, expect_failed: set[str], headline: str
) -> None:
    report = assess(naive(query), NAIVE)
    assert failed(report) == expect_failed, [(c.name, c.ok, c.detail) for c in report.checks]
    assert report.headline == headline
    assert report.ok is (headline == "STREAMS")
    assert {c.name for c in report.advice} == (expect_failed if headline == "STREAMS" else set())
    assert all(c.fix for c in report.failed)  # every failure says what to change


def test_probe_read_timeout_is_a_cut_stream(naive_url: str) -> None:
    # The server goes silent for longer than the probe waits: reported as cut, naming the timeout.
    report = assess(observe(f"{naive_url}/s?n=4&pings=0&silence=3", timeout=PROBE_READ_TIMEOUT), NAIVE)
    assert report.headline == "CUT"
    assert "read timeout" in report.check("terminal_event").detail


def test_buffered_verdict_reads_for_a_newcomer(naive: Callable[[str], Observation]) -> None:
    report = assess(naive("buffer=1&n=10"), NAIVE)
    assert report.summary.startswith("BUFFERED: all 10 events arrived together")
    assert "after they were sent" in report.summary
    assert "proxy_buffering off;" in report.check("incremental").fix


def test_burst_detection_passes_a_paced_stream_without_timestamps(naive: Callable[[str], Observation]) -> None:
    report = assess(naive(PACED_NO_STAMPS), NAIVE)
    assert report.check("incremental").ok is True
    assert report.stats["lag_max"] is None


def test_missing_x_accel_buffering_fails_only_when_required(naive: Callable[[str], Observation]) -> None:
    obs = naive("headers=0")
    assert assess(obs, NAIVE).check("x_accel_buffering").ok is None
    required = assess(obs, Expectations(max_lag=MAX_LAG, ping_interval=NAIVE_PING_INTERVAL, x_accel_buffering=True))
    assert required.check("x_accel_buffering").ok is False


def test_no_heartbeats_unjudged_without_interval(naive: Callable[[str], Observation]) -> None:
    report = assess(naive("pings=0&silence=1.2"), Expectations(max_lag=MAX_LAG))
    assert report.check("heartbeats").ok is None
    assert "--ping-interval" in report.check("heartbeats").detail


# --- TLS with a private CA, and the HTTP version expectation ---------------------------------


def test_tls_with_private_ca(naive_tls_url: str, ca: tuple[Path, Path, Path]) -> None:
    ca_pem = str(ca[0])
    report = assess(observe(f"{naive_tls_url}/s", verify=ca_pem, http2=True), NAIVE)
    assert_streams(report)
    assert report.observation.http_version == "HTTP/1.1"  # the server offers only http/1.1 by ALPN
    wanted = assess(report.observation, Expectations(max_lag=MAX_LAG, http_version="HTTP/2"))
    assert failed(wanted) == {"http_version"}

    untrusted = assess(observe(f"{naive_tls_url}/s", timeout=5), NAIVE)
    assert not untrusted.connected
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.check("status").detail


# --- the pure helpers ---------------------------------------------------------------------------


def test_percentile_and_bursts() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert [len(b) for b in bursts([0.0, 0.01, 0.02, 0.5, 1.0, 1.01], 0.05)] == [3, 1, 2]
