"""A client that goes away closes the upstream request at once, seen from fake-upstream's side of
the network, in every window (issue #3, acceptance 1): before the upstream answered with headers,
before its first chunk, between chunks, and while the client has stopped reading (blocked send);
plus the send-timeout path for a client that stops reading and never closes.

Each trial is a raw socket (so the moment of the close is exact): `t0` is taken just before
`close()`, and fake-upstream stamps its record the moment its server sees the app's connection
end (`close_reason == "client_closed"`). Trials enter their window concurrently and close one by one.
"""

from __future__ import annotations

import fcntl
import json
import math
import socket
import statistics
import struct
import termios
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import httpx

from streamkit.local import metrics_url, wait_until
from tests.bounds import SCHEDULER_SLACK, assert_p95, p95
from tests.relay.conftest import MODEL, SEND_TIMEOUT, FakeUpstream, NaiveRelay, Relay, rid

TRIALS = 30
# Clients in a window at once (10 blocked floods close well within SEND_TIMEOUT).
BATCH = 10
# Pause between two closes, so each is measured alone.
CLOSE_GAP = 0.05
# The acceptance bound: p95 of client close -> fake-upstream sees its connection closed.
MAX_CLOSE_P95 = 0.100
# A client's receive buffer so small that the app's sends block after a few KB.
TINY_RCVBUF = 4096
# The send-timeout path: fake-upstream's connection closes within SEND_TIMEOUT of the stall,
# plus this slack (stall detection is approximate: the last token fake-upstream wrote).
SEND_TIMEOUT_SLACK = 1.5
# How long to wait for fake-upstream's record of a closed connection before calling it leaked.
RECORD_WAIT = 5.0
# How long a client's receive queue must stay the same size to count as "the app is blocked".
STALL_SETTLE = 0.3


class RawClient:
    """One HTTP/1.1 request on a plain socket; nothing between the test and the kernel."""

    def __init__(
        self, base_url: str, path: str, request_id: str, body: dict[str, object] | None = None, rcvbuf: int = 0
    ):
        parts = urlsplit(base_url)
        self.request_id = request_id
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        self.sock.settimeout(20)
        self.sock.connect((parts.hostname, parts.port))
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{'POST' if body is not None else 'GET'} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        head += f"X-Request-ID: {request_id}\r\nAccept: text/event-stream\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + payload)
        self.received = b""

    def read_until(self, marker: bytes) -> None:
        while marker not in self.received:
            data = self.sock.recv(65536)
            assert data, f"connection ended before {marker!r}: {self.received[-500:]!r}"
            self.received += data

    def queued(self) -> int:
        """Bytes waiting in the kernel receive queue (unread)."""
        return struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]

    def close(self) -> float:
        t0 = time.time()
        self.sock.close()
        return t0


def chat_stream(relay: Relay | NaiveRelay, prompt: str) -> RawClient:
    return RawClient(relay.url, f"/v1/chat/stream?prompt={quote(prompt)}", rid())


def flood(relay: Relay, rcvbuf: int = TINY_RCVBUF) -> RawClient:
    """A long chat.completions stream to a client that will not read. Chunks carry 32 KB of
    padding (relayed verbatim), so the socket buffers on both legs fill after a few hundred chunks."""
    prompt = "flood fake.tokens=3000 fake.tokens_per_second=40 fake.first_token_delay=0 fake.obfuscation=32000"
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    return RawClient(relay.url, "/v1/chat/completions", rid(), body, rcvbuf=rcvbuf)


def wait_blocked(client: RawClient) -> None:
    """Until the client's receive queue stops growing: the app's send to it is blocked."""
    last = [-1, time.monotonic()]

    def settled() -> bool:
        size = client.queued()
        if size != last[0]:
            last[:] = [size, time.monotonic()]
            return False
        return size > 0 and time.monotonic() - last[1] >= STALL_SETTLE

    wait_until(settled, 20, 0.02, "the app's send to block")


def close_delays(upstream: FakeUpstream, enter: Callable[[], RawClient], trials: int = TRIALS) -> list[float]:
    """`trials` trials: `enter` opens a client and returns once it is in the window under test.
    Clients enter concurrently, BATCH at a time, then close one by one CLOSE_GAP apart, so each
    close is measured on its own rather than queued behind 29 others on one worker. A delay is
    infinite when fake-upstream did not see the connection end within RECORD_WAIT, or saw the
    stream end some other way than by the client (the relay) closing it."""
    delays = []
    with ThreadPoolExecutor(BATCH) as pool:
        for _ in range(trials // BATCH):
            clients = list(pool.map(lambda _: enter(), range(BATCH)))
            closed = []
            for client in clients:
                closed.append(client.close())
                time.sleep(CLOSE_GAP)  # pacing the load, not synchronisation
            for client, t0 in zip(clients, closed, strict=True):
                try:
                    record = upstream.record(client.request_id, timeout=RECORD_WAIT)
                except TimeoutError:
                    delays.append(math.inf)
                    continue
                ok = record.close_reason == "client_closed" and record.closed_at is not None
                delays.append(record.closed_at - t0 if ok and record.closed_at else math.inf)
    return delays


def report(window: str, delays: list[float]) -> list[float]:
    value = p95(delays)
    ms = sorted(round(d * 1000, 1) for d in delays)
    print(
        f"\n{window}: client close -> upstream closed, p50 {statistics.median(delays) * 1000:.1f} ms, "
        f"p95 {value * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms over {len(delays)} trials: {ms}"
    )
    return delays


def closes_quickly(window: str, delays: list[float]) -> None:
    assert_p95(report(window, delays), MAX_CLOSE_P95, f"{window}: client close -> upstream closed")


def test_window_before_upstream_headers(relay: Relay) -> None:
    def enter() -> RawClient:
        client = chat_stream(relay, "window headers fake.header_delay=30")
        # fake-upstream has the request and sits on its headers; the app is inside open().
        wait_until(lambda: relay.upstream.saw(client.request_id), 20, 0.02, "fake-upstream to get the request")
        return client

    closes_quickly("before upstream headers", close_delays(relay.upstream, enter))


def test_negative_control_naive_relay_leaves_the_upstream_open(naive_relay: NaiveRelay) -> None:
    """The same measurement against a relay that awaits the upstream in its route and leaves the
    SDK stream to garbage collection: the upstream outlives the client by about the header delay."""

    def enter() -> RawClient:
        client = chat_stream(naive_relay, "naive fake.header_delay=1 fake.tokens=1000 fake.tokens_per_second=10")
        wait_until(lambda: naive_relay.upstream.saw(client.request_id), 20, 0.02, "fake-upstream to get the request")
        return client

    delays = report("NAIVE relay, before upstream headers", close_delays(naive_relay.upstream, enter, BATCH))
    assert p95(delays) > MAX_CLOSE_P95 + SCHEDULER_SLACK


def test_window_before_first_upstream_chunk(relay: Relay) -> None:
    def enter() -> RawClient:
        client = chat_stream(relay, "window first fake.first_token_delay=30")
        client.read_until(b"event: start")  # the app answered, so the upstream's headers came
        return client

    closes_quickly("before first upstream chunk", close_delays(relay.upstream, enter))


def test_window_between_chunks(relay: Relay) -> None:
    def enter() -> RawClient:
        client = chat_stream(relay, "window between fake.tokens=100 fake.tokens_per_second=2 fake.first_token_delay=0")
        client.read_until(b"event: token")  # upstream chunks are 500 ms apart, each sent in microseconds
        return client

    closes_quickly("between chunks", close_delays(relay.upstream, enter))


def test_non_streaming_request_closes_its_upstream_too(relay: Relay) -> None:
    prompt = "non-streaming fake.first_token_delay=30"
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}

    def enter() -> RawClient:
        client = RawClient(relay.url, "/v1/chat/completions", rid(), body)
        wait_until(lambda: relay.upstream.saw(client.request_id), 20, 0.02, "fake-upstream to get the request")
        return client

    closes_quickly("non-streaming, waiting for the answer", close_delays(relay.upstream, enter, 2 * BATCH))


def test_window_client_stopped_reading(relay: Relay) -> None:
    def enter() -> RawClient:
        client = flood(relay)
        wait_blocked(client)
        return client

    closes_quickly("client stopped reading (blocked send)", close_delays(relay.upstream, enter))


def test_send_timeout_closes_the_upstream(relay: Relay) -> None:
    clients = [flood(relay) for _ in range(3)]
    try:
        for client in clients:
            record = relay.upstream.record(client.request_id, timeout=SEND_TIMEOUT + 10)
            assert record.close_reason == "client_closed", record  # the app closed it, the client did not
            assert record.closed_at is not None and record.last_emit_at is not None
            assert record.closed_at - record.last_emit_at <= SEND_TIMEOUT + SEND_TIMEOUT_SLACK, record
    finally:
        for client in clients:
            client.close()
    metrics = httpx.get(metrics_url(relay.url), timeout=5).text
    cancelled = [line for line in metrics.splitlines() if line.startswith("streamkit_streams_cancelled_total{")]
    assert any('reason="send_timeout"' in line and 'route="chat_completions"' in line for line in cancelled), cancelled


def test_cancelled_stream_counts_delivered_tokens(relay: Relay) -> None:
    def delivered() -> float:
        for line in httpx.get(metrics_url(relay.url), timeout=5).text.splitlines():
            if line.startswith('streamkit_tokens_streamed_total{route="chat_stream"}'):
                return float(line.split()[-1])
        return 0.0

    before = delivered()
    client = chat_stream(relay, "count fake.tokens=100 fake.tokens_per_second=5 fake.first_token_delay=0")
    client.read_until(b"event: token\ndata: ")
    while client.received.count(b"event: token") < 3:
        client.received += client.sock.recv(65536)
    client.close()
    record = relay.upstream.record(client.request_id)
    assert record.close_reason == "client_closed"
    wait_until(lambda: delivered() - before == 3, 5, what="3 delivered tokens counted")
    assert record.emitted >= 3  # generated upstream; the metric counts what reached the client
