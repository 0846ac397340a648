"""All settings of the reference app, read from the environment (pydantic-settings).

This module is the one source of truth for the timeout budget on the app side:
the gunicorn config, `streamkit lint` and the infra tests read their defaults from here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.fakellm import FakeKnobs

FAKE_MODEL = "streamkit-fake"
# issue #20: why relay mode without client keys does not start.
OPEN_RELAY = (
    "refusing to start an open relay: UPSTREAM_BASE_URL is set but API_KEYS_FILE is not, so anyone who "
    "reaches the app would spend the upstream key. Set API_KEYS_FILE (docs/auth.md), or ALLOW_ANONYMOUS=true "
    "if auth happens in front of the app"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # --- serving (gunicorn + uvicorn workers) -------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(2, ge=1, le=64)
    # Seconds an idle keep-alive connection stays open (gunicorn `keepalive`, which uvicorn-worker
    # hands to uvicorn as `timeout_keep_alive`). It must be LONGER than every proxy's upstream
    # keep-alive pool (nginx 60 s, Envoy/Traefik/ALB 60 s in the kit's templates), so the proxy
    # always closes an idle connection first; otherwise it may reuse a socket the app is closing
    # and answer 502. Uvicorn's own default is 5 s.
    keepalive: int = Field(75, ge=1)

    # --- streaming ----------------------------------------------------------------------------
    # Heartbeat comment interval. Must stay below every hop's idle/read timeout.
    ping_interval: float = Field(15.0, gt=0)
    # A client that stops reading for this long is dropped and its upstream closed.
    send_timeout: float = Field(30.0, gt=0)
    # Longest stream the app serves; total-duration timeouts at every hop must cover it.
    max_stream_seconds: float = Field(3600.0, gt=0)
    # On SIGTERM, open streams get this long to finish before they end with `server_shutdown`.
    # Must stay below gunicorn's graceful_timeout (set to drain_seconds + 5 in gunicorn_conf).
    drain_seconds: float = Field(25.0, ge=0)
    # EventSource reconnection hint, sent as `retry:` on the first event.
    retry_ms: int = Field(3000, ge=0)
    # Add the server's emit time (`emitted_at`, unix seconds) to every token event, so
    # `streamkit probe` can measure real per-event lag. Off by default.
    emit_timestamps: bool = False

    # --- request limits -----------------------------------------------------------------------
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_prompt_chars: int = Field(32_000, ge=1)
    max_tokens_limit: int = Field(100_000, ge=1)

    # --- upstream -----------------------------------------------------------------------------
    # Empty: the built-in deterministic fake LLM. Otherwise any OpenAI-compatible base URL
    # (https://api.openai.com/v1, http://vllm:8000/v1, http://ollama:11434/v1, ...).
    upstream_base_url: str = ""
    # Sent only to the upstream; a SecretStr, so it never shows in a repr, a log or an error.
    upstream_api_key: SecretStr = SecretStr("")
    # The one model the app serves (and lists in /v1/models) when relaying.
    upstream_model: str = ""
    # Seconds to open a TCP (and TLS) connection to the upstream; the SDK's default is 5 s.
    upstream_connect_timeout: float = Field(5.0, gt=0)
    # Longest silence allowed between two upstream reads (first token included).
    upstream_read_timeout: float = Field(300.0, gt=0)
    # Connect errors before the first byte are retried this many times, never anything else.
    upstream_connect_retries: int = Field(2, ge=0, le=5)
    # --- i13 (faithful relay): which models the relay accepts ---------------------------------
    # Comma-separated model names the relay accepts; empty: the upstream's own `GET /models`
    # (read on first use, every UPSTREAM_MODELS_REFRESH seconds, and when an unknown model is
    # asked for), plus UPSTREAM_MODEL, the default for /v1/chat/stream.
    upstream_models: str = ""
    upstream_models_refresh: float = Field(60.0, gt=0)
    # POST /v1/responses: `native` relays it to the upstream's own `/responses` byte for byte (OpenAI
    # and vLLM serve it); `translate` turns it into a Chat Completions stream (any server).
    upstream_responses: Literal["translate", "native"] = "translate"

    # --- built-in fake LLM defaults (per-request knobs override them) -------------------------
    # Unset: the fake's own defaults (app/fakellm.py `FakeKnobs`, written there once).
    fake_tokens: int = Field(FakeKnobs.tokens, ge=0)
    fake_tokens_per_second: float = Field(FakeKnobs.tokens_per_second, ge=0)
    fake_first_token_delay: float = Field(FakeKnobs.first_token_delay, ge=0)
    # When set, the fake writes one JSON record per stream here (emit times, close time, reason):
    # the upstream's own record that tests use to measure cancellation.
    fake_record_dir: str = ""

    # --- client auth and limits (issue #20; docs/auth.md) -------------------------------------
    # File of client keys, one `name  sha256-hex-of-key` per line (`#` comments). Every /v1/ path
    # then needs `Authorization: Bearer <key>`. Re-read when its mtime changes (checked at most once
    # a second), so a rotated Kubernetes Secret applies without a restart. Empty: no client keys.
    api_keys_file: str = ""
    # Relaying to a real upstream (UPSTREAM_BASE_URL) without API_KEYS_FILE is an open relay: the
    # app refuses to start unless this says it is meant (e.g. auth at the proxy). The fake needs none.
    allow_anonymous: bool = False
    # Concurrent streams one key may hold (0: no limit). Shared by every replica with REDIS_URL,
    # else counted per worker process.
    max_streams_per_key: int = Field(0, ge=0)
    # Content tokens one key may stream per minute (fixed one-minute window; 0: no limit).
    tokens_per_minute: int = Field(0, ge=0)
    # Open streams one worker process serves (0: no limit); beyond it a fast 503, not slow streams.
    max_streams_per_worker: int = Field(0, ge=0)
    # redis://host:port/db shared by all replicas (stream leases, token windows, used stream tokens).
    # The one Redis setting of the kit (app/store.py). A SecretStr: it may hold a password.
    redis_url: SecretStr = SecretStr("")
    # A stream's lease in Redis expires this long after its last renewal (renewed every third of
    # it while the stream runs): a crashed replica's slots free themselves within this time.
    lease_ttl_seconds: float = Field(10.0, ge=1)
    # Lifetime of a browser stream token (POST /v1/stream-tokens), good for one stream.
    stream_token_ttl_seconds: float = Field(60.0, gt=0, le=3600)

    # --- dead peers (issue 16; app/sockets.py, docs/timeouts.md) -------------------------------
    # Longest time from a peer vanishing (client or upstream; no FIN, no RST) to the app ending the
    # stream and closing the other side. Unset: 2 × PING_INTERVAL (30 s). 0: off (the kernel's own
    # ~15 min of retransmissions). Sets TCP_USER_TIMEOUT = (DEAD_PEER_TIMEOUT − PING_INTERVAL) / 2
    # and TCP keepalive on every accepted and every upstream connection (app/sockets.py).
    dead_peer_timeout: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _dead_peer(self) -> Settings:
        if 0 < self.dead_peer_budget <= self.ping_interval:
            raise ValueError("DEAD_PEER_TIMEOUT must exceed PING_INTERVAL (or be 0: off)")
        return self

    @property
    def dead_peer_budget(self) -> float:
        """DEAD_PEER_TIMEOUT, or its default 2 × PING_INTERVAL; 0 means off."""
        return 2 * self.ping_interval if self.dead_peer_timeout is None else self.dead_peer_timeout

    @property
    def tcp_user_timeout(self) -> float:
        """Seconds unacknowledged data may stay in flight (TCP_USER_TIMEOUT). A stream has data in
        flight within PING_INTERVAL of its peer vanishing; the kernel checks the user timeout only
        when its retransmission timer fires, which backs off exponentially (200 ms, 400 ms, ...),
        so the abort comes up to about twice the user timeout after the first unacknowledged
        byte. Half of what is left after one heartbeat keeps the whole within the budget."""
        return max(0.0, self.dead_peer_budget - self.ping_interval) / 2

    # --- end of dead peers ----------------------------------------------------------------------

    # --- resumable streams (issue 19; docs/resume.md) -------------------------------------------
    # REDIS_URL (above, the one Redis setting) empty: resumable streams are logged in the worker's
    # memory (a rejoin must reach the same worker); set: in Redis Streams, so a reconnect resumes on
    # any replica.
    # After the last reader of a resumable stream leaves, the generation goes on this long for a
    # reconnect, then is cancelled (the model stops billing). Default: a few EventSource retry
    # intervals (RETRY_MS 3 s), so a browser's automatic reconnect after a blip always makes it.
    resume_grace_seconds: float = Field(10.0, ge=0)
    # A finished stream's log (terminal event included) stays this long for late rejoins;
    # OpenAI keeps background responses about 5 minutes.
    resume_ttl_seconds: float = Field(300.0, gt=0)
    # Longest log, in events (Redis: XADD MAXLEN ~); a reader further behind cannot resume exactly.
    resume_max_events: int = Field(20_000, ge=16)
    # In-memory backend: most logs one worker keeps (finished ones are evicted first).
    resume_max_streams: int = Field(1000, ge=1)
    # Redis backend: the producer's lease; a reader that sees it lapse (producer killed, node lost)
    # ends the stream with an `error` event within this long + 1 s.
    resume_lease_seconds: float = Field(5.0, gt=0)

    # Directory for prometheus_client multiprocess files (set by `streamkit serve`).
    prometheus_multiproc_dir: str = ""
    # i21: the metrics listener's port (on HOST), apart from the public port: GET /metrics there
    # serves every worker's series; the public port answers 404 for /metrics. 9464 is the port
    # registered for Prometheus exporters of OpenTelemetry, clear of node_exporter (9100) and
    # Prometheus (9090). Default: 9464.
    metrics_port: int = Field(9464, ge=1, le=65535)

    @model_validator(mode="after")
    def _budget(self) -> Settings:
        if self.upstream_base_url and not self.upstream_model:
            raise ValueError("UPSTREAM_MODEL is required when UPSTREAM_BASE_URL is set")
        return self

    @property
    def uses_fake(self) -> bool:
        return not self.upstream_base_url

    @property
    def model_name(self) -> str:
        return FAKE_MODEL if self.uses_fake else self.upstream_model

    @property
    def graceful_timeout(self) -> int:
        """gunicorn graceful_timeout: the drain window plus time to flush terminal events and exit."""
        return int(self.drain_seconds) + 5


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
