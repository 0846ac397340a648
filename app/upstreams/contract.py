"""What the relay forwards, sets, changes or withholds: one table, rendered into the README
("Relay a real model") and checked row by row by tests/relay/test_contract.py.

Each row names its check; the test fails when a row has no check or a check no row, and when the
README's table differs from `markdown()`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Client headers passed on to the upstream as they came (W3C trace context). The request id goes
# as `X-Request-ID` (the client's when well formed, else the app's own).
FORWARDED_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class Row:
    part: str  # request body, request header, stream, response, error, models
    item: str
    action: str  # forwarded, set, changed, withheld, not forwarded
    detail: str
    check: str  # the name of its check in tests/relay/test_contract.py


REQUEST, HEADER, STREAM, RESPONSE, ERROR, MODELS = (
    "request body",
    "request header",
    "streamed response",
    "non-streamed response",
    "errors",
    "models",
)

# POST /v1/chat/completions relayed to an OpenAI-compatible upstream.
ROWS: tuple[Row, ...] = (
    Row(
        REQUEST,
        "every field the client sends (model, messages, tools, tool_choice, n, logprobs, response_format, "
        "reasoning_effort, fields this kit does not know)",
        "forwarded",
        "unchanged, as the same JSON values",
        "body_forwarded",
    ),
    Row(
        REQUEST,
        "`stream_options.include_usage`",
        "set",
        "`true` on streaming requests (the client's other `stream_options` kept): the relay counts real tokens",
        "include_usage_set",
    ),
    Row(
        REQUEST,
        "`fake`",
        "not forwarded",
        "refused with a 400 (`param: fake`) while relaying: the fake LLM's knobs",
        "fake_refused",
    ),
    Row(
        HEADER,
        "`Authorization`",
        "set",
        "`Bearer UPSTREAM_API_KEY`; the client's is never forwarded",
        "authorization_replaced",
    ),
    Row(HEADER, "`Cookie`", "not forwarded", "", "cookie_dropped"),
    Row(
        HEADER,
        "`X-Request-ID`",
        "set",
        "the client's when well formed (`[A-Za-z0-9._-]{1,64}`); absent: the app's own; malformed: a 400 "
        "`invalid_request_id` and no upstream request",
        "request_id",
    ),
    Row(HEADER, "`traceparent`, `tracestate`", "forwarded", "unchanged (W3C trace context)", "trace_headers"),
    Row(
        HEADER,
        "any other client header",
        "not forwarded",
        "the SDK sends its own `User-Agent`, `Content-Type`",
        "other_headers_dropped",
    ),
    Row(
        STREAM,
        "every upstream chunk (id, created, model, system_fingerprint, service_tier, every choice, "
        "tool_calls, refusal, reasoning_content, logprobs, usage details, unknown fields)",
        "forwarded",
        "byte for byte, in order; no chunk of the app's own",
        "chunks_identical",
    ),
    Row(
        STREAM,
        "`emitted_at`",
        "set",
        "only with EMIT_TIMESTAMPS=true (off by default): the send time in each chunk, for `streamkit probe`",
        "emitted_at",
    ),
    Row(
        STREAM,
        "the usage-only chunk",
        "withheld",
        "when the client did not ask for `include_usage` (still counted in the metrics)",
        "usage_withheld",
    ),
    Row(
        STREAM,
        "`data` over several lines",
        "changed",
        "re-framed as one `data:` line per line: the same data",
        "multiline",
    ),
    Row(
        STREAM,
        "upstream comments and `event:`/`id:`/`retry:` fields",
        "not forwarded",
        "the app sends its own heartbeat comments",
        "comments_dropped",
    ),
    Row(
        STREAM,
        "`data: [DONE]`",
        "set",
        "ends every stream the upstream ended (also after an in-stream error)",
        "done_marker",
    ),
    Row(STREAM, 'an in-stream `{"error": ...}`', "forwarded", "as the upstream sent it, key redacted", "stream_error"),
    Row(
        RESPONSE,
        "the `chat.completion` body",
        "forwarded",
        "byte for byte (non-streaming is relayed as non-streaming), key redacted",
        "nonstream_identical",
    ),
    Row(
        RESPONSE,
        "upstream response headers",
        "not forwarded",
        "the app sets `Content-Type`, `Cache-Control: no-cache, no-transform`, `X-Accel-Buffering: no`, `X-Request-ID`",
        "response_headers",
    ),
    Row(
        ERROR,
        "an upstream HTTP error before streaming",
        "forwarded",
        "its status and error object (type, code, "
        "param, message), key redacted; for 401/403 the message is replaced (it may show part of the key)",
        "status_error",
    ),
    Row(
        ERROR,
        "unreachable upstream, timeouts",
        "set",
        "the kit's own: 502 `upstream_error`, 504 `upstream_timeout`",
        "kit_errors",
    ),
    Row(
        MODELS,
        "`GET /v1/models`, the `model` a request names",
        "forwarded",
        "the upstream's list (re-read every "
        "UPSTREAM_MODELS_REFRESH s and on an unknown name), or UPSTREAM_MODELS; other names: 404 `model_not_found`",
        "models",
    ),
)


def markdown() -> str:
    lines = ["| Part | Item | Relay | Detail | Checked by |", "|---|---|---|---|---|"]
    lines += [f"| {r.part} | {r.item} | {r.action} | {r.detail} | `{r.check}` |" for r in ROWS]
    return "\n".join(lines)


if __name__ == "__main__":  # print the README table
    print(markdown())
