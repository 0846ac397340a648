"""How a stream ended: one word (`ending`) and one enum (`Ending`) for it, from the producer that
decides it to the terminal event the client gets and the metrics that count it.

Each member states, once:

* `event`: the terminal event it closes the stream with: `done` (DONE), an `error` event of this
  `type` (the OpenAI-style body of app/errors.py), or None when nobody is left to read one (the
  client went away or stopped reading);
* `label`: the value of the `outcome` label of `streamkit_stream_duration_seconds` and of the
  `reason` label of `streamkit_streams_cancelled_total` (every member but COMPLETED is a
  cancellation). Dashboards, alerts and recording rules in infra/observability/ match these values:
  they never change;
* `upstream_error`: whether it counts in `streamkit_upstream_errors_total` (by its `type`).

Two members may share a label or an error type where the metrics always merged them (an
unexpected server error counts as `upstream_error`; the longest-stream limit ends with an
`upstream_timeout` event but is not an upstream failure). The error `type` strings of app/errors.py
and the label values of app/metrics.py are taken from here, so the two sets cannot drift apart.
"""

from __future__ import annotations

from enum import Enum

# The `event` of a stream that completed (the endpoint's own end: `done`, `[DONE]`, `response.completed`).
DONE = "done"


class Ending(Enum):
    """How one stream ended (app/streaming.py decides it once; docs/architecture.md)."""

    event: str | None
    label: str
    upstream_error: bool

    def __new__(cls, name: str, event: str | None, label: str, upstream_error: bool = False) -> Ending:
        member = object.__new__(cls)
        member._value_ = name
        member.event = event
        member.label = label
        member.upstream_error = upstream_error
        return member

    #                  name                 terminal event        metric label         upstream error
    COMPLETED = "completed", DONE, "completed"
    CLIENT_DISCONNECT = "client_disconnect", None, "client_disconnect"
    SEND_TIMEOUT = "send_timeout", None, "send_timeout"  # the client stopped reading
    UPSTREAM_ERROR = "upstream_error", "upstream_error", "upstream_error", True
    UPSTREAM_TIMEOUT = "upstream_timeout", "upstream_timeout", "upstream_timeout", True
    SERVER_ERROR = "server_error", "server_error", "upstream_error", True  # an unexpected error of the app's
    MAX_DURATION = "max_duration", "upstream_timeout", "upstream_timeout"  # MAX_STREAM_SECONDS reached
    SHUTDOWN = "shutdown", "server_shutdown", "shutdown"  # the drain deadline (SIGTERM)
    TOKEN_BUDGET = "token_budget", "tokens", "token_budget"  # the key's TOKENS_PER_MINUTE (app/limits.py)
    # Resumable streams (app/resume/): stopped by the resume layer, which writes the error event.
    CLIENT_CANCEL = "client_cancel", "stream_cancelled", "client_cancel"  # POST /v1/streams/{id}/cancel
    GRACE_EXPIRED = "grace_expired", "stream_cancelled", "grace_expired"  # nobody rejoined in time
    LOG_LOST = "log_lost", "stream_cancelled", "log_lost"  # the log refused an append

    @property
    def error_type(self) -> str:
        """The `type` of its terminal `error` event (a member that ends with one)."""
        if self.event is None or self.event == DONE:
            raise ValueError(f"{self.name} ends without an error event")
        return self.event

    def __str__(self) -> str:
        return str(self.value)


# Every value the `outcome` / `reason` labels take, in the order of the members.
LABELS: tuple[str, ...] = tuple(dict.fromkeys(ending.label for ending in Ending))
