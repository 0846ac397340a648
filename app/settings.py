"""All settings of the reference app, read from the environment (pydantic-settings).

This module is the one source of truth for the timeout budget on the app side:
the gunicorn config, `streamkit lint` and the infra tests read their defaults from here.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FAKE_MODEL = "streamkit-fake"


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

    # --- built-in fake LLM defaults (per-request knobs override them) -------------------------
    fake_tokens: int = Field(48, ge=0)
    fake_tokens_per_second: float = Field(20.0, ge=0)
    fake_first_token_delay: float = Field(0.3, ge=0)
    # When set, the fake writes one JSON record per stream here (emit times, close time, reason):
    # the upstream's own record that tests use to measure cancellation.
    fake_record_dir: str = ""

    # --- resumable streams (issue 19; docs/resume.md) -------------------------------------------
    # The one Redis setting (shared with per-key limits). Empty: resumable streams are logged in
    # the worker's memory (a rejoin must reach the same worker); set: in Redis Streams, so a
    # reconnect resumes on any replica. Example: redis://redis:6379/0
    redis_url: str = ""
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
