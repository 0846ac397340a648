"""The rules `streamkit lint` checks, and the budget comparisons they share.

The budget (docs/timeouts.md): two ping intervals < every idle/read timeout; every
total-duration timeout >= the longest stream; every proxy's upstream keep-alive pool < the app's
keep-alive; load-balancer draining >= the app's drain window; a vanished client given up within
the app's dead-peer budget. Per-proxy fixes and docs links live next to each format's checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamkit.lint.durations import show


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    title: str


CONFIG = Rule("SK0", "config", "The config can be read and checked")
BUFFERING = Rule("SK1", "buffering", "Response buffering is off on SSE routes (not only via the app's header)")
COMPRESSION = Rule("SK2", "compression", "text/event-stream is never compressed")
IDLE_TIMEOUT = Rule("SK3", "idle-timeout", "Every idle or read timeout is longer than two ping intervals")
TOTAL_TIMEOUT = Rule("SK4", "total-timeout", "Total-duration timeouts cover the longest stream")
KEEPALIVE = Rule("SK5", "keepalive", "The proxy's upstream keep-alive pool is shorter than the app's keep-alive")
HTTP1 = Rule("SK6", "http1", "The hop to uvicorn uses HTTP/1.1")
METRICS = Rule("SK7", "metrics", "/metrics is not public")
# i21: rules that were stated only in tests/static/test_terraform.py (now checked by lint alone).
DRAIN = Rule("SK8", "drain", "Load balancers drain a target at least as long as the app's drain window")
CACHE = Rule("SK9", "cache", "Streaming routes are never cached")
# Issue 16: docs/timeouts.md "Dead peers".
DEAD_PEER = Rule("SK10", "dead-peer", "A client whose network vanishes is given up within the app's dead-peer budget")

RULES = (BUFFERING, COMPRESSION, IDLE_TIMEOUT, TOTAL_TIMEOUT, KEEPALIVE, HTTP1, METRICS, DRAIN, CACHE, DEAD_PEER)
# Three tiers; "the kit's app" means `--app streamkit`, or auto for a file under the kit's own infra/
# (streamkit/lint/scan.py, `_tier`).
#
# - Streaming rules (SK1-SK4, SK9) hold for any app behind the proxy: always findings (exit 1).
# - App rules judge a config against the kit's own app: its keep-alive (SK5), uvicorn's HTTP/1.1 only
#   (SK6), its drain window (SK8), its dead-peer budget (SK10). Findings for the kit's app, notes
#   for any other. SK10 is an app rule because what it judges against is the app's own setting
#   (DEAD_PEER_TIMEOUT, with the bound PING_INTERVAL + 2 x TCP_USER_TIMEOUT that relies on the app's
#   heartbeats), and because a proxy without the bound breaks no stream: every event still arrives,
#   and a client that vanished costs generation until the kernel gives up (tcp_retries2, ~15 min).
#   That cost is the kit's budget to keep; for another app it is a note to act on.
# - Advice (SK7) is about apps unlike the kit's: notes for any other app, never a finding, and not
#   reported at all for the kit's app. Many FastAPI apps serve Prometheus metrics on their public
#   port (prometheus instrumentators), and a proxy that forwards `/` publishes them. The kit's app
#   serves metrics only on its own listener (METRICS_PORT, app/metrics.py `serve_metrics`) and its
#   public port answers 404 for /metrics (tests/metrics/test_listener.py::
#   test_the_public_port_has_no_metrics), so a config forwarding `/` to it publishes nothing. The
#   templates' /metrics guards stay as defence in depth, proven by the e2e check `hides_metrics`.
STREAMING_RULES = (BUFFERING, COMPRESSION, IDLE_TIMEOUT, TOTAL_TIMEOUT, CACHE)
APP_RULES = (KEEPALIVE, HTTP1, DRAIN, DEAD_PEER)
ADVICE_RULES = (METRICS,)
BY_NAME = {rule.name: rule for rule in (CONFIG, *RULES)}

SSE_MEDIA_TYPE = "text/event-stream"
# The app's streaming endpoints (README.md, "Endpoints"), and the path SK7 advises keeping private
# (an app that serves its metrics on its public port).
SSE_PATHS = ("/v1/chat/stream", "/v1/chat/completions", "/v1/responses")
METRICS_PATH = "/metrics"
# The tail of every SK7 problem: advice, since whether anything is exposed depends on the app.
METRICS_EXPOSED = (
    "if the app serves Prometheus metrics on this port (as prometheus instrumentators do), anyone can read them"
)
# The tail of every SK5 fix: either side of the inequality can move.
BELOW_APP_KEEPALIVE = ", below the app's keep-alive (or raise the app's KEEPALIVE above it)"


# SK3's margin: an idle timer must outlive two ping intervals, not one. Pings are sent on a timer
# beside the token producer, so one heartbeat may be late (a busy event loop, a slow hop, a GC
# pause) or lost with a reset hop; a timer of exactly one interval (or a little more) then cuts a
# healthy quiet stream. Two intervals let one heartbeat be missed; the Terraform modules' validation
# blocks (infra/terraform/*/variables.tf) state the same `> 2 * ping_interval_seconds`.
IDLE_PINGS = 2


def idle_too_short(value: float | None, ping: float, what: str) -> str | None:
    """An idle/read timer (None or 0 = disabled) must outlive IDLE_PINGS gaps between pings."""
    if value is None or value <= 0 or value > IDLE_PINGS * ping:
        return None
    return (
        f"{what} is {show(value)}, not longer than {IDLE_PINGS} ping intervals ({show(IDLE_PINGS * ping)}): "
        "one late heartbeat cuts a quiet stream"
    )


def drain_too_short(value: float | None, drain: float, what: str) -> str | None:
    """Deregistration/connection draining (None = off) must last the app's drain window (0 = unchecked)."""
    if drain <= 0 or (value is not None and value >= drain):
        return None
    shown = "off" if value is None else show(value)
    return (
        f"{what} is {shown}, shorter than the app's drain window ({show(drain)}): streams are cut at a deploy "
        "instead of ending with a terminal event"
    )


# SK10 (docs/timeouts.md "Dead peers"). A stream has data in flight within one ping interval of its
# client vanishing; the kernel gives up once it stays unacknowledged TCP_USER_TIMEOUT, checked when
# the backed-off retransmission timer fires: up to about twice that. So the bound on a vanished
# client is PING_INTERVAL + 2 x TCP_USER_TIMEOUT, the formula the app uses on its own sockets
# (app/sockets.py).
DEAD_PEER_DOCS = "docs/timeouts.md#dead-peers"
DEAD_PEER_UNBOUNDED = (
    "a client whose network vanishes (no FIN, no RST) keeps its stream, and the model behind it, running "
    "until Linux stops retransmitting (net.ipv4.tcp_retries2 = 15: about 15 min)"
)
# Formats whose config cannot set TCP_USER_TIMEOUT on the client side (their TCP keepalive probes
# only idle connections, and a stream always has heartbeats in flight): SK10 is a note for them,
# never a finding, and names the host setting that bounds it instead.
DEAD_PEER_NOT_EXPRESSIBLE = {
    "nginx": "nginx (`listen ... so_keepalive=` probes only idle connections)",
    "caddy": "Caddy (`keepalive_interval` probes only idle connections)",
    "traefik": "Traefik (Go's TCP keepalive probes only idle connections)",
    "traefik-labels-toml": "Traefik (Go's TCP keepalive probes only idle connections)",
}


def dead_peer_user_timeout(ping: float, dead_peer: float) -> float:
    """The TCP_USER_TIMEOUT (seconds) that bounds a vanished client at `dead_peer`, as the app sets it."""
    return max(0.001, (dead_peer - ping) / 2)


def dead_peer_too_long(user_timeout: float, ping: float, dead_peer: float, what: str) -> str | None:
    """A client-side TCP_USER_TIMEOUT must bound a vanished client within the budget (0 = unchecked)."""
    bound = ping + 2 * user_timeout
    if dead_peer <= 0 or bound <= dead_peer:
        return None
    return (
        f"{what} is {show(user_timeout)}: a client whose network vanishes is given up about {show(bound)} later "
        f"(PING_INTERVAL + 2 × it), over the app's dead-peer budget ({show(dead_peer)}, DEAD_PEER_TIMEOUT)"
    )


def dead_peer_note(format_name: str) -> str | None:
    """SK10's note for a format that cannot set the bound (None: the format can, or has no client side)."""
    proxy = DEAD_PEER_NOT_EXPRESSIBLE.get(format_name)
    if proxy is None:
        return None
    return (
        f"{proxy} cannot set TCP_USER_TIMEOUT on its client connections: {DEAD_PEER_UNBOUNDED}. Bound it with the "
        "host's (or the proxy pod's) `net.ipv4.tcp_retries2` (8: about 100 s), or put HAProxy (`tcp-ut`) or Envoy "
        "(listener `socket_options`) at the edge"
    )


def total_too_short(value: float | None, max_stream: float, what: str) -> str | None:
    """A total-duration deadline (None or 0 = disabled) must cover the longest stream."""
    if value is None or value <= 0 or value >= max_stream:
        return None
    return f"{what} is {show(value)}, shorter than the longest stream ({show(max_stream)}): long streams are cut"


def pool_too_long(value: float | None, keepalive: float, source: str, what: str) -> str | None:
    """An upstream idle pool (None or 0 = no pooling) must close before the app does."""
    if value is None or value <= 0 or value < keepalive:
        return None
    return (
        f"{what} is {show(value)}, not shorter than the app's keep-alive ({show(keepalive)}, {source}): "
        "the proxy may reuse a connection the app is closing and answer 502"
    )


def prefix_matches(prefix: str, path: str, elementwise: bool = False) -> bool:
    """Prefix matching; `elementwise` is Kubernetes/Gateway API style (`/v1` matches `/v1/x`, not `/v1x`)."""
    if not elementwise:
        return path.startswith(prefix)
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def regex_matches(pattern: str, path: str, ignore_case: bool = False) -> bool:
    try:
        return re.search(pattern, path, re.IGNORECASE if ignore_case else 0) is not None
    except re.error:
        return False
