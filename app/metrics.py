"""Prometheus metrics of the streaming core.

Base units, `_total` on counters, bounded labels only (`route`, `outcome`, `reason`, `type`),
explicit buckets sized for LLM latencies (the client library's default stops at 10 s).
Works under gunicorn with several workers: `streamkit serve` points PROMETHEUS_MULTIPROC_DIR at
a fresh directory before any worker imports prometheus_client, gunicorn_conf wipes it at start
and marks dead workers, and `/metrics` aggregates every worker's files per scrape.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Time to first byte / first token. Start fine (a local fake answers in ms), end wide (reasoning
# models think for minutes). Close to vLLM's TTFT set (0.001 ... 2560 s, which SGLang and LMDeploy
# reuse) but without its sub-ms and 2560 s ends, and with 1.5/2 s for the common SLO edge.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
)
# Gap between tokens: vLLM's inter-token set (0.01 ... 80 s) extended down to 1 ms, since a fast
# model behind a fast relay delivers tokens every few ms and p50 must be resolvable there.
GAP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    40.0,
    80.0,
)
# Whole-stream duration: seconds to an hour (MAX_STREAM_SECONDS).
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
# Client disconnect -> upstream request closed. The kit's goal is < 50 ms; resolve well below it.
CLOSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Outcomes of a stream: "completed" or one of the cancellation reasons.
COMPLETED = "completed"
CLIENT_DISCONNECT = "client_disconnect"
SEND_TIMEOUT = "send_timeout"
UPSTREAM_ERROR = "upstream_error"
UPSTREAM_TIMEOUT = "upstream_timeout"
SHUTDOWN = "shutdown"
CANCEL_REASONS = (CLIENT_DISCONNECT, SEND_TIMEOUT, UPSTREAM_ERROR, UPSTREAM_TIMEOUT, SHUTDOWN)

TIME_TO_FIRST_BYTE = Histogram(
    "streamkit_time_to_first_byte_seconds",
    "Request received to the first body bytes of the stream written (headers already sent).",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "streamkit_time_to_first_token_seconds",
    "Request received to the first content token written to the client.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
INTER_TOKEN_GAP = Histogram(
    "streamkit_inter_token_gap_seconds",
    "Time between two consecutive content tokens written to the client.",
    ["route"],
    buckets=GAP_BUCKETS,
)
STREAM_DURATION = Histogram(
    "streamkit_stream_duration_seconds",
    "Whole stream, request received to terminal event or cancellation, by outcome.",
    ["route", "outcome"],
    buckets=DURATION_BUCKETS,
)
STREAMS_CANCELLED = Counter(
    "streamkit_streams_cancelled_total",
    "Streams that ended before the upstream finished, by reason.",
    ["route", "reason"],
)
UPSTREAM_CLOSE_AFTER_DISCONNECT = Histogram(
    "streamkit_upstream_close_after_disconnect_seconds",
    "Client disconnect noticed to upstream request closed.",
    ["route"],
    buckets=CLOSE_BUCKETS,
)
ACTIVE_STREAMS = Gauge(
    "streamkit_active_streams",
    "Streams open right now (summed over live workers).",
    ["route"],
    multiprocess_mode="livesum",
)
TOKENS_STREAMED = Counter(
    "streamkit_tokens_streamed_total", "Content tokens written to clients (delivered, not merely generated).", ["route"]
)
PINGS_SENT = Counter("streamkit_pings_sent_total", "Heartbeat comments written to clients.", ["route"])
UPSTREAM_ERRORS = Counter(
    "streamkit_upstream_errors_total",
    "Upstream failures, before or after the first byte, by normalized error type.",
    ["route", "type"],
)


def exposition() -> tuple[bytes, str]:
    """The text exposition, aggregated over all gunicorn workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
