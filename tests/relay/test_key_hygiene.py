"""The upstream API key never leaves the app: not in a response, an event, a log line or a metric
label, under every fault (issue #3, acceptance 4).

fake-upstream is careless on purpose: its error messages (HTTP errors and in-stream errors) echo
the key the app presented. The negative control shows the same scan finding the key in what
fake-upstream itself answers, so a relay that passed upstream text on would be caught.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest

from streamkit.local import free_port, metrics_url
from tests.relay.conftest import API_KEY, MODEL, DeadRelay, Relay

# Every fault knob of fake-upstream, as prompt directives.
FAULTS = [
    "fake.status=401",
    "fake.status=404",
    "fake.status=429",
    "fake.status=500",
    "fake.status=503",
    "fake.header_delay=3",
    "fake.tokens=4 fake.fail_at=2 fake.tokens_per_second=0 fake.first_token_delay=0",
    "fake.tokens=4 fake.drop_at=2 fake.tokens_per_second=0 fake.first_token_delay=0",
    "fake.tokens=4 fake.stall_at=2 fake.stall_seconds=5 fake.tokens_per_second=0 fake.first_token_delay=0",
    "fake.tokens=3 fake.tokens_per_second=0 fake.first_token_delay=0",  # no fault
]


def leaks(text: str) -> bool:
    """The scan: the key, whole or as a recognizable part (its random middle)."""
    middle = API_KEY.split("-")[3]
    return API_KEY in text or middle in text


def requests_through(url: str, prompt: str) -> list[tuple[str, str | None, dict[str, object] | None]]:
    messages = [{"role": "user", "content": prompt}]
    return [
        ("GET", f"{url}/v1/chat/stream?prompt={quote(prompt)}", None),
        ("POST", f"{url}/v1/chat/completions", {"model": MODEL, "stream": True, "messages": messages}),
        ("POST", f"{url}/v1/chat/completions", {"model": MODEL, "messages": messages}),
        ("POST", f"{url}/v1/responses", {"model": MODEL, "stream": True, "input": prompt}),
    ]


def fetch(method: str, url: str, body: dict[str, object] | None, headers: dict[str, str] | None = None) -> str:
    """Status, headers and the whole body (every event) of one response. A relay that does not
    answer fails here (httpx raises): a scan of nothing would find no key."""
    response = httpx.request(method, url, json=body, headers=headers, timeout=30)
    return f"{response.status_code}\n{response.headers}\n{response.text}"


def answered(answer: str) -> bool:
    """The relay answered: an HTTP status and a body (events, a completion or an error)."""
    status, _, rest = answer.partition("\n")
    return status.isdigit() and bool(rest.partition("\n")[2].strip())


def test_negative_control_the_scan_finds_a_leaked_key(relay: Relay) -> None:
    # fake-upstream's HTTP errors and in-stream errors echo the key: the scan must see them.
    auth = {"Authorization": f"Bearer {API_KEY}"}
    for fault in (FAULTS[0], FAULTS[6]):
        body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"x {fault}"}]}
        assert leaks(fetch("POST", relay.upstream.url + "/chat/completions", body, auth)), fault


def test_negative_control_an_unreachable_relay_is_not_a_pass() -> None:
    with pytest.raises(httpx.ConnectError):
        fetch("GET", f"http://127.0.0.1:{free_port()}/v1/chat/stream?prompt=x", None)


def answers(url: str, prompt: str) -> list[str]:
    """Every endpoint's answer to one prompt (concurrently: faults that time out take seconds)."""
    with ThreadPoolExecutor() as pool:
        return list(pool.map(lambda request: fetch(*request), requests_through(url, prompt)))


@pytest.mark.parametrize("fault", FAULTS)
def test_no_response_or_event_carries_the_key(relay: Relay, fault: str) -> None:
    for answer in answers(relay.url, f"hygiene {fault}"):
        assert answered(answer), answer
        assert not leaks(answer), answer


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_connection_faults_do_not_carry_the_key(dead_relay: DeadRelay, mode: str) -> None:
    getattr(dead_relay.upstream, mode)()
    for answer in answers(dead_relay.url, "hygiene unreachable"):
        assert answered(answer) and "upstream_" in answer and not leaks(answer), answer


def test_no_log_line_or_metric_carries_the_key(relay: Relay, dead_relay: DeadRelay) -> None:
    # Runs after the fault sweeps above (same module): every process's whole log so far.
    for proc in relay.processes.started:
        log = proc.log_path.read_text(errors="replace")
        assert log, proc.name
        assert not leaks(log), f"{proc.name} log {proc.log_path}"
    for url in (relay.url, dead_relay.url):
        metrics = httpx.get(metrics_url(url), timeout=5).text
        assert "streamkit_upstream_errors_total" in metrics
        assert not leaks(metrics)
