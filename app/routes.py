"""HTTP routes: the three streaming endpoints, model discovery, health (metrics: app/metrics.py)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from app import metrics, resume_routes
from app.ending import Ending
from app.errors import INVALID_REQUEST, NOT_FOUND, SERVER_SHUTDOWN, APIError
from app.schemas import ChatCompletionRequest, ResponsesRequest
from app.settings import Settings
from app.streaming import Stream
from app.upstreams import Generation, Upstream, UpstreamError, UpstreamStream
from app.upstreams.contract import FORWARDED_HEADERS
from app.wire import ChatCompletionsEncoder, ChatStreamEncoder, Encoder, ResponsesEncoder, usage_of

router = APIRouter()

T = TypeVar("T")

# Cookie the streaming routes set: shows that headers and cookies set by a route reach the client
# on the streaming response itself (FastAPI does not merge an injected Response into a returned one).
STREAM_COOKIE = "streamkit_stream"


def _state(request: Request) -> tuple[Settings, Upstream]:
    return request.app.state.settings, request.app.state.upstream


def _extra(settings: Settings, fields: dict[str, Any], knobs: object | None = None) -> dict[str, Any]:
    """`Generation.extra`: the client's `fields` for the upstream, without the kit's own `fake`
    field, which comes back only as `knobs` (the built-in fake upstream's, read by that upstream
    from here) and is refused with a 400 while relaying: it is never forwarded."""
    fields = {name: value for name, value in fields.items() if name != "fake"}
    if knobs is None:
        return fields
    if not settings.uses_fake:
        raise APIError(
            400,
            "Fake LLM knobs are accepted only while the built-in fake upstream is active.",
            INVALID_REQUEST,
            param="fake",
        )
    return {**fields, "fake": knobs}


async def _check(
    settings: Settings,
    upstream: Upstream,
    request: Request,
    model: str,
    prompt: str,
    param: str,
    max_tokens: int | None,
) -> None:
    if request.app.state.drain.draining:
        raise APIError(503, "The server is shutting down; retry the request.", SERVER_SHUTDOWN)
    await upstream.ensure_models(model)
    if model not in upstream.models:
        raise APIError(404, f"The model '{model}' does not exist.", NOT_FOUND, param="model", code="model_not_found")
    if len(prompt) > settings.max_prompt_chars:
        raise APIError(
            400,
            f"The prompt is {len(prompt)} characters long; the limit is {settings.max_prompt_chars}.",
            INVALID_REQUEST,
            param=param,
            code="context_length_exceeded",
        )
    if max_tokens is not None and max_tokens > settings.max_tokens_limit:
        raise APIError(
            400, f"max tokens must be at most {settings.max_tokens_limit}.", INVALID_REQUEST, param="max_tokens"
        )


class ClientGone(APIError):
    """The client disconnected before the response started (nginx's 499: nobody reads this answer)."""

    def __init__(self) -> None:
        super().__init__(499, "The client closed the request.", INVALID_REQUEST, code="client_closed_request")


async def _unless_disconnected(request: Request, route: str, work: Awaitable[T]) -> T:
    """Await `work` (opening the upstream, or a whole non-streaming completion), cancelled at once
    if the client disconnects first. Before the response starts nothing else listens for
    `http.disconnect`, so without this race an upstream slow to answer would stay open until it did."""
    done: list[T] = []
    failed: list[Exception] = []
    disconnected_at: float | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal disconnected_at
            while (await request.receive())["type"] != "http.disconnect":
                pass
            disconnected_at = time.perf_counter()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            done.append(await work)
        except Exception as exc:  # raised below, outside the group (which would wrap it)
            failed.append(exc)
        group.cancel_scope.cancel()
    if failed:
        raise failed[0]
    if done:
        return done[0]
    close_delay = None if disconnected_at is None else time.perf_counter() - disconnected_at
    metrics.record_ending(route, Ending.CLIENT_DISCONNECT, close_delay)
    raise ClientGone


def _counted(route: str, exc: UpstreamError) -> UpstreamError:
    """An upstream failure before the first byte, counted: the client gets its status and error
    object (the upstream's own type, code, param and message when the upstream reported one)."""
    metrics.record_ending(route, exc.ending)
    return exc


async def _open(request: Request, route: str, generation: Generation) -> UpstreamStream:
    """Start the upstream generation; failures known now become a proper HTTP status."""
    _, upstream = _state(request)
    try:
        return await _unless_disconnected(request, route, upstream.open(generation))
    except UpstreamError as exc:
        raise _counted(route, exc) from None


async def _forward(request: Request, route: str, generation: Generation) -> Response:
    """Non-streaming, relaying: the upstream's own answer, as it came (see OpenAIUpstream.complete
    for why forwarding beats assembling), cancelled at once if the client leaves first."""
    _, upstream = _state(request)
    try:
        data, _ = await _unless_disconnected(request, route, upstream.complete(generation))  # type: ignore[attr-defined]
    except UpstreamError as exc:
        raise _counted(route, exc) from None
    return Response(data, media_type="application/json")


def forwarded_headers(request: Request) -> dict[str, str]:
    """The client headers the relay passes on (app.upstreams.contract); the request id travels
    as `X-Request-ID` separately, and never the client's Authorization or cookies."""
    return {name: value for name in FORWARDED_HEADERS if (value := request.headers.get(name)) is not None}


async def _stream(
    request: Request, route: str, generation: Generation, encoder: Encoder, resumable: bool = False
) -> Response:
    upstream_stream = await _open(request, route, generation)
    if resumable:  # issue 19: the generation detached from the connection (app/resume_routes.py)
        return await resume_routes.start_resumable(request, route, generation, encoder, upstream_stream)
    response = _core(request, route, generation, upstream_stream, encoder).response({})
    response.set_cookie(STREAM_COOKIE, generation.request_id, httponly=True, samesite="strict")
    return response


def _core(
    request: Request, route: str, generation: Generation, upstream_stream: UpstreamStream, encoder: Encoder
) -> Stream:
    """The streaming core (app/streaming.py) for one opened generation."""
    return Stream(
        route=route,
        upstream=upstream_stream,
        encoder=encoder,
        settings=request.app.state.settings,
        drain=request.app.state.drain,
        received_at=request.state.received_at,
        prompt_tokens=len(generation.prompt.split()),
    )


async def _complete(request: Request, route: str, generation: Generation, encoder: Encoder) -> Response:
    """Not streamed: the streaming core's producer run to its end (`Stream.collect`), the chunks
    fed to `encoder` (which assembles what is more than text: tool calls) and its one body
    returned; a failure is an HTTP error with the error body the stream would have ended with."""
    upstream_stream = await _open(request, route, generation)
    core = _core(request, route, generation, upstream_stream, encoder)
    chunks, terminal = await _unless_disconnected(request, route, core.collect())
    if terminal.error is not None:
        metrics.record_ending(route, terminal.ending)
        error = terminal.error["error"]
        raise APIError(terminal.status, error["message"], error["type"], error["param"], error["code"])
    for chunk in chunks:
        encoder.token(chunk)
    text = "".join(chunk.delta for chunk in chunks)
    usage = terminal.usage or usage_of(core.prompt_tokens, sum(1 for chunk in chunks if chunk.delta))
    return JSONResponse(encoder.body(text, terminal.finish_reason, usage))


def _encoder_args(request: Request, model: str) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return {
        "request_id": request.state.request_id,
        "model": model,
        "emit_timestamps": settings.emit_timestamps,
        "retry_ms": settings.retry_ms,
    }


@router.get("/v1/chat/stream")
async def chat_stream(
    request: Request,
    prompt: Annotated[str, Query(min_length=1)],
    model: str | None = None,
    max_tokens: Annotated[int | None, Query(ge=1)] = None,
    # The built-in fake's knobs (its `fake` field, as query parameters), checked by the fake.
    tokens: int | None = None,
    tokens_per_second: float | None = None,
    first_token_delay: float | None = None,
    stall_at: int | None = None,
    stall_seconds: float | None = None,
    fail_at: int | None = None,
    resumable: bool = False,
) -> Response:
    """EventSource-friendly stream: `start`, `token`*, then `done` or `error`."""
    if resumable and request.headers.get("last-event-id"):  # issue 19: a reconnect resumes, never regenerates
        return await resume_routes.rejoin_last_event_id(request, request.headers["last-event-id"])
    settings, upstream = _state(request)
    model = model or settings.model_name
    given: dict[str, Any] = {
        "tokens": tokens,
        "tokens_per_second": tokens_per_second,
        "first_token_delay": first_token_delay,
        "stall_at": stall_at,
        "stall_seconds": stall_seconds,
        "fail_at": fail_at,
    }
    knobs = {name: value for name, value in given.items() if value is not None}
    await _check(settings, upstream, request, model, prompt, "prompt", max_tokens)
    generation = Generation(
        request_id=request.state.request_id,
        model=model,
        prompt=prompt,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        extra=_extra(settings, {}, knobs or None),
        headers=forwarded_headers(request),
    )
    encoder = ChatStreamEncoder(**_encoder_args(request, model))
    return await _stream(request, "chat_stream", generation, encoder, resumable)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, body: ChatCompletionRequest) -> Response:
    """Relaying, the client's body goes upstream as it was sent (validated, not rebuilt: unknown
    fields included) and the upstream's chunks come back as they were sent."""
    settings, upstream = _state(request)
    await _check(settings, upstream, request, body.model, body.prompt(), "messages", body.token_limit())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    relay = not settings.uses_fake
    sent: dict[str, Any] = await request.json() if relay else {}
    generation = Generation(
        request_id=request.state.request_id,
        model=body.model,
        prompt=body.prompt(),
        messages=sent.get("messages") or [msg.model_dump(exclude_none=True) for msg in body.messages],
        max_tokens=None if relay else body.token_limit(),
        include_usage=include_usage,
        extra=_extra(settings, sent, body.fake),
        passthrough=relay,
        headers=forwarded_headers(request),
    )
    encoder = ChatCompletionsEncoder(**_encoder_args(request, body.model), include_usage=include_usage, relay=relay)
    resumable = resume_routes.wants_resume(request, body)  # issue 19: `Streamkit-Resumable: 1`
    if body.stream:
        return await _stream(request, "chat_completions", generation, encoder, resumable)
    if relay:
        return await _forward(request, "chat_completions", generation)
    return await _complete(request, "chat_completions", generation, encoder)


# Request parameters a Responses `response` object repeats (translate mode).
RESPONSE_ECHO = ("tools", "tool_choice", "temperature", "top_p", "parallel_tool_calls", "text", "reasoning", "metadata")


@router.post("/v1/responses")
async def responses(request: Request, body: ResponsesRequest) -> Response:
    settings, upstream = _state(request)
    await _check(settings, upstream, request, body.model, body.prompt(), "input", body.max_output_tokens)
    if not settings.uses_fake and settings.upstream_responses == "native":
        return await _responses_native(request, body)
    generation = Generation(
        request_id=request.state.request_id,
        model=body.model,
        prompt=body.prompt(),
        messages=body.messages(),
        max_tokens=body.max_output_tokens,
        extra=_extra(settings, body.chat_fields(), body.fake),
        headers=forwarded_headers(request),
    )
    given = {**(body.model_extra or {}), "instructions": body.instructions, "max_output_tokens": body.max_output_tokens}
    echo = {
        k: v for k, v in given.items() if k in (*RESPONSE_ECHO, "instructions", "max_output_tokens") and v is not None
    }
    encoder = ResponsesEncoder(**_encoder_args(request, body.model), echo=echo)
    resumable = resume_routes.wants_resume(request, body)  # issue 19: `background: true` (or the header)
    if body.stream:
        return await _stream(request, "responses", generation, encoder, resumable)
    return await _complete(request, "responses", generation, encoder)


async def _responses_native(request: Request, body: ResponsesRequest) -> Response:
    """UPSTREAM_RESPONSES=native: the client's body to the upstream's `/responses` as sent, its
    events (or its non-streamed response) back as they came: tools, function_call items,
    reasoning, usage details and all."""
    sent: dict[str, Any] = await request.json()
    generation = Generation(
        request_id=request.state.request_id,
        model=body.model,
        prompt=body.prompt(),
        messages=[],
        extra=_extra(request.app.state.settings, sent),
        passthrough=True,
        headers=forwarded_headers(request),
        api="responses",
    )
    if body.stream:
        encoder = ResponsesEncoder(**_encoder_args(request, body.model), relay=True)
        return await _stream(request, "responses", generation, encoder)
    return await _forward(request, "responses", generation)


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    _, upstream = _state(request)
    await upstream.ensure_models(None)
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "streamkit"} for name in upstream.models],
    }


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    drain = request.app.state.drain
    if drain.draining:
        return JSONResponse({"status": "draining", "open_streams": drain.open_streams}, status_code=503)
    return JSONResponse({"status": "ready"})
