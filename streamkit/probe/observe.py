"""The probe's instrument: open one SSE stream with httpx and time everything that arrives.

Framing is parsed by httpx-sse (its line splitter and decoder); this module only adds clocks:
when the headers came, when each event and each heartbeat comment arrived, and whether the
stream ended cleanly or was cut. Times are seconds since the request was sent; `emitted_at`
(when the server includes it) is unix time, compared with the arrival's unix time for lag.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse._api import _iter_sse_lines
from httpx_sse._decoders import SSEDecoder


@dataclass
class Event:
    arrival: float  # seconds since the request was sent
    arrival_unix: float
    event: str
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return None

    @property
    def emitted_at(self) -> float | None:
        payload = self.json()
        value = payload.get("emitted_at") if isinstance(payload, dict) else None
        return float(value) if isinstance(value, int | float) else None

    @property
    def lag(self) -> float | None:
        emitted = self.emitted_at
        return None if emitted is None else self.arrival_unix - emitted


@dataclass
class Observation:
    url: str
    status: int | None = None
    http_version: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    time_to_headers: float | None = None
    events: list[Event] = field(default_factory=list)
    pings: list[float] = field(default_factory=list)  # arrival of each comment line
    ended_at: float | None = None
    error: str | None = None  # how the stream broke, if it did
    body: str = ""  # the body of a non-SSE response (an error, say)
    closed_early: bool = False  # we hung up on purpose (close_after)
    started_unix: float | None = None  # unix time the request was sent (to compare with emitted_at)

    @property
    def headers_unix(self) -> float | None:
        """Unix time the response headers arrived."""
        if self.started_unix is None or self.time_to_headers is None:
            return None
        return self.started_unix + self.time_to_headers


def observe(
    url: str,
    *,
    method: str = "GET",
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    http2: bool = False,
    verify: bool | str | ssl.SSLContext = True,
    close_after_events: int | None = None,
    accept_encoding: str = "gzip",
    client: httpx.Client | None = None,
) -> Observation:
    """Stream `url` to its end (or `close_after_events`) and return what was seen, with times.

    `verify` may be a CA bundle path (for a private CA, e.g. test certificates) or an SSLContext.
    """
    obs = Observation(url=url)
    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)
    send_headers = {"Accept": "text/event-stream", "Accept-Encoding": accept_encoding, **(headers or {})}
    own_client = client is None
    client = client or httpx.Client(http2=http2, verify=verify, timeout=httpx.Timeout(timeout, connect=10.0))
    obs.started_unix = time.time()
    started = time.perf_counter()
    try:
        with client.stream(method, url, json=json_body, headers=send_headers) as response:
            obs.time_to_headers = time.perf_counter() - started
            obs.status = response.status_code
            obs.http_version = response.http_version
            obs.headers = {k.lower(): v for k, v in response.headers.items()}
            if "text/event-stream" not in obs.headers.get("content-type", ""):
                obs.body = response.read().decode(errors="replace")
                return obs
            decoder = SSEDecoder()
            has_data = False  # a `data` field since the last dispatch
            for line in _iter_sse_lines(response):
                now = time.perf_counter() - started
                if line.startswith(":"):
                    obs.pings.append(now)
                    continue
                has_data = has_data or line.partition(":")[0] == "data"
                sse = decoder.decode(line)
                if sse is None:
                    continue
                if not has_data:
                    # The SSE spec dispatches nothing for a block without data (a comment's blank
                    # line, an `id:`-only block); httpx-sse 0.4 would, once an id has been seen.
                    continue
                has_data = False
                obs.events.append(Event(now, time.time(), sse.event, sse.data, sse.id or None, sse.retry))
                if close_after_events is not None and len(obs.events) >= close_after_events:
                    obs.closed_early = True
                    break
    except httpx.HTTPError as exc:
        obs.error = f"{type(exc).__name__}: {exc}"
    finally:
        obs.ended_at = time.perf_counter() - started
        if own_client:
            client.close()
    return obs
