"""`streamkit fake-upstream`: an OpenAI-compatible server around the app's own fake LLM.

It is the upstream for the relay tests, the demo and the benchmarks: `GET /v1/models`,
`POST /v1/chat/completions` (streaming or not) and `POST /v1/responses` (streaming or not). The
text comes from `app.fakellm` (the one deterministic generator; same prompt, same text) and the
framing from `app.wire` (the encoders the app itself uses), so nothing here generates or frames
tokens a second time.

Knobs travel inside the prompt, as `fake.NAME=VALUE` words anywhere in the message text. The app
relays prompts unchanged to any upstream and forwards nothing else a client sends (it refuses its
own `fake` body field while a real upstream is configured), so this is the one channel that works
through all three of the app's endpoints, and the text stays deterministic (it is derived from the
whole prompt, knobs included). Names:

* the fake LLM's own knobs: `tokens`, `tokens_per_second` (0: as fast as possible),
  `first_token_delay`, `stall_at` + `stall_seconds` (silence before token N), `fail_at` (an
  in-stream `{"error": ...}` object before token N, then the stream ends);
* `status` (401, 404, 429, 500, 503, ...): answer that HTTP status with an OpenAI error body
  before streaming;
* `drop_at`: drop the connection before token N (no terminating chunk, no `[DONE]`);
* `header_delay`: wait this long before sending the response headers;
* `obfuscation`: pad every chat.completions chunk with an `obfuscation` field of N characters
  (OpenAI's own padding field, `stream_options.include_obfuscation`): big chunks fill socket
  buffers in a few hundred tokens, for tests of a client that stops reading.

Example prompt: `hello fake.tokens=5 fake.tokens_per_second=0 fake.drop_at=3`.

Replay: `fake.replay=NAME` in the prompt answers with the recorded-style fixture
`NAME.sse` in streamkit/replay/ (streaming; the event stream exactly as written there, CR/LF variants,
comments and multi-line `data` included; the usage-only chunk left out unless the request asked
for `stream_options.include_usage`, as OpenAI and vLLM do) or `NAME.json` (not streaming), and
on `/v1/responses` `NAME.responses.sse` / `NAME.responses.json`. The
fixtures are written from the OpenAI and vLLM wire formats (see streamkit/replay/README.md).

Models: `--model` takes a comma-separated list (the first is the default); each is served.

Request records: with a record dir, every generation request also leaves
`<request id>.request.json`: the body as received, the headers (Authorization only as whether it
matched the key), so the relay tests can check what the app forwards.

With `--api-key`, requests must carry `Authorization: Bearer <key>`. Error messages (the 401 and
every fault knob's) echo the key the client presented: a careless upstream on purpose, so the
relay tests prove that the app never passes an upstream's key on. The key is never logged.

Records: with `--record-dir` (default: FAKE_RECORD_DIR) each request leaves the fake LLM's own
record (`app.fakellm.FakeRecord`), named by the request's `X-Request-ID` (the app forwards its
request id): tokens emitted with times, and when and why the connection ended. `close_reason` is
`client_closed` when the client closed the connection first, stamped the moment the server saw
it; otherwise `completed`, `dropped`, `error` or `status`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from app.fakellm import FakeFailure, FakeKnobs, FakeLLM

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from app.upstreams.base import Chunk
    from app.wire import Encoder

# The app's request schemas, encoders and error shapes are imported where used: they pull in
# FastAPI, and `streamkit --help` imports this module (cli.py: heavy imports stay inside run).

HELP = "serve an OpenAI-compatible fake LLM with fault knobs (the upstream for tests, demo, bench)"

log = logging.getLogger("streamkit.fake_upstream")

DEFAULT_MODEL = "fake-upstream"
_KNOB = re.compile(r"\bfake\.([a-z_]+)=([0-9.]+)")
_REPLAY = re.compile(r"\bfake\.replay=([a-z0-9_]+)")
REPLAY_DIR = Path(__file__).parent / "replay"
# One SSE event with the blank line that ends it (any of the spec's line ends).
_EVENT = re.compile(rb"(?:.*?)(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)", re.DOTALL)
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
# A header of the upstream's own on replayed answers (OpenAI sends this one): the relay must not pass it on.
_UPSTREAM_HEADER = (b"openai-processing-ms", b"7")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Per-request knobs go in the prompt as fake.NAME=VALUE words: tokens, tokens_per_second, "
        "first_token_delay, stall_at, stall_seconds, fail_at (in-stream error), status (HTTP error), "
        "drop_at (drop the connection), header_delay, obfuscation (pad chunks). "
        "Example: 'hello fake.tokens=5 fake.drop_at=3'."
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port (default 8100)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"the model names it serves, comma-separated (default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAKE_UPSTREAM_API_KEY", ""),
        help="require this bearer key (default: env FAKE_UPSTREAM_API_KEY; empty: accept any)",
    )
    # Defaults: the fake LLM's own (app/fakellm.py FakeKnobs).
    tokens, rate, delay = FakeKnobs.tokens, FakeKnobs.tokens_per_second, FakeKnobs.first_token_delay
    parser.add_argument("--tokens", type=int, default=tokens, help=f"tokens per answer unless asked ({tokens})")
    parser.add_argument("--tokens-per-second", type=float, default=rate, help=f"pace, 0 = max speed ({rate:g})")
    parser.add_argument("--first-token-delay", type=float, default=delay, help=f"seconds before token 0 ({delay:g})")
    parser.add_argument(
        "--record-dir", default=os.environ.get("FAKE_RECORD_DIR", ""), help="write one record per request here"
    )


@dataclass(frozen=True)
class Faults:
    """The knobs that belong to the HTTP server rather than to the generator."""

    status: int | None = None
    drop_at: int | None = None
    header_delay: float = 0.0
    obfuscation: int = 0


def parse_knobs(prompt: str, defaults: FakeKnobs) -> tuple[FakeKnobs, Faults]:
    """`fake.NAME=VALUE` words of a prompt; ValueError names the first bad one."""
    from pydantic import ValidationError

    from app.upstreams.fake import FakeKnobsIn

    given = dict(_KNOB.findall(prompt))
    faults = Faults(
        status=int(given.pop("status")) if "status" in given else None,
        drop_at=int(given.pop("drop_at")) if "drop_at" in given else None,
        header_delay=float(given.pop("header_delay", 0)),
        obfuscation=min(int(given.pop("obfuscation", 0)), 65536),
    )
    if faults.status is not None and not 400 <= faults.status < 600:
        raise ValueError("fake.status must be an HTTP error status (400-599)")
    try:
        knobs = FakeKnobsIn.model_validate_json(json.dumps({k: json.loads(v) for k, v in given.items()}))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad fake.* knob in the prompt: {exc}") from None
    return knobs.to_knobs(defaults), faults


class FakeUpstreamApp:
    """The ASGI application (pure ASGI: the stream loop owns its connection's fate)."""

    def __init__(
        self, model: str = DEFAULT_MODEL, api_key: str = "", defaults: FakeKnobs | None = None, record_dir: str = ""
    ) -> None:
        self.models = [name.strip() for name in model.split(",") if name.strip()]
        self.model = self.models[0]
        self.api_key = api_key
        self.defaults = defaults or FakeKnobs()
        self.record_dir = record_dir

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"].rstrip("/"))
        if route == ("GET", "/v1/models"):
            data = [{"id": name, "object": "model", "created": 0, "owned_by": "streamkit"} for name in self.models]
            await _json(send, 200, {"object": "list", "data": data})
        elif route in (("POST", "/v1/chat/completions"), ("POST", "/v1/responses")):
            await self._generate(scope, receive, send, route[1])
        else:
            await _error(send, 404, f"No route {route[0]} {route[1]}.", "not_found_error")

    async def _generate(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        from pydantic import BaseModel, ValidationError

        from app.schemas import ChatCompletionRequest, ResponsesRequest
        from app.wire import ChatCompletionsEncoder, ResponsesEncoder

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex[:24]
        presented = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self.api_key and presented != self.api_key:
            message = f"Incorrect API key provided: {presented}."
            await _error(send, 401, message, "invalid_request_error", "invalid_api_key")
            return
        body = await _read_body(receive)
        self._record_request(request_id, path, headers, body, presented)
        schema: type[BaseModel] = ChatCompletionRequest if path == "/v1/chat/completions" else ResponsesRequest
        try:
            request: ChatCompletionRequest | ResponsesRequest = schema.model_validate_json(body)  # type: ignore[assignment]
            prompt = request.prompt()
            knobs, faults = parse_knobs(prompt, self.defaults)
        except (ValidationError, ValueError) as exc:
            await _error(send, 400, str(exc)[:500], "invalid_request_error")
            return
        if request.model not in self.models:
            message = f"The model '{request.model}' does not exist."
            await _error(send, 404, message, "not_found_error", "model_not_found")
            return
        replays = _REPLAY.findall(prompt)
        if replays:  # the last one: a tool result may name the fixture of the next turn
            options = getattr(request, "stream_options", None)
            name = replays[-1] + ("" if path == "/v1/chat/completions" else ".responses")
            await _replay(send, name, request.stream, bool(options and options.include_usage))
            return
        limit = request.token_limit() if isinstance(request, ChatCompletionRequest) else request.max_output_tokens
        if limit is not None and limit < knobs.tokens:
            knobs = replace(knobs, tokens=limit)
        llm = FakeLLM(prompt, knobs, request_id, self.record_dir)
        log.info("request %s %s stream=%s", request_id, path, request.stream)
        if faults.status is not None:
            await anyio.sleep(faults.header_delay)
            message = f"fake-upstream answers HTTP {faults.status} as asked (key presented: {presented})."
            await _error(send, faults.status, message, "upstream_error", f"fake_{faults.status}")
            llm.close("status")
            return
        common: dict[str, Any] = {
            "request_id": f"upstream-{request_id}",
            "model": request.model,
            "emit_timestamps": False,
        }
        encoder: Encoder
        if isinstance(request, ChatCompletionRequest):
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            encoder = ChatCompletionsEncoder(**common, retry_ms=0, include_usage=include_usage)
        else:
            encoder = ResponsesEncoder(**common, retry_ms=0)
        exchange = Exchange(receive, send, llm, faults, encoder, len(prompt.split()), presented)
        await exchange.run(request.stream)

    def _record_request(self, request_id: str, path: str, headers: dict[str, str], body: bytes, presented: str) -> None:
        if not self.record_dir:
            return
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        seen = {k: v for k, v in headers.items() if k != "authorization"}
        auth = "absent" if "authorization" not in headers else "key" if presented == self.api_key else "other"
        record = {"path": path, "body": parsed, "headers": seen, "authorization": auth}
        name = re.sub(r"[^A-Za-z0-9._-]", "_", request_id)
        (Path(self.record_dir) / f"{name}.request.json").write_text(json.dumps(record))


def replay_events(name: str, include_usage: bool) -> list[bytes]:
    """The fixture's events as written (each with its blank line), the usage-only chunk left out
    unless asked for. Raises FileNotFoundError for an unknown fixture."""
    raw = (REPLAY_DIR / f"{name}.sse").read_bytes()
    events = _EVENT.findall(raw)
    if not include_usage:
        events = [e for e in events if not (b'"choices":[]' in e and b'"usage":{' in e)]
    return events


async def _replay(send: Send, name: str, stream: bool, include_usage: bool) -> None:
    if not re.fullmatch(r"[a-z0-9_]+(\.responses)?", name) or not (REPLAY_DIR / f"{name}.sse").exists():
        await _error(send, 400, f"No replay fixture named '{name}'.", "invalid_request_error", param="messages")
        return
    if not stream:
        path = REPLAY_DIR / f"{name}.json"
        if not path.exists():
            await _error(send, 400, f"The fixture '{name}' streams only.", "invalid_request_error", param="stream")
            return
        body = path.read_bytes()
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), _UPSTREAM_HEADER]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, _UPSTREAM_HEADER]})
    # In small pieces, so that events (and CR LF pairs) straddle reads on the relay's side.
    data = b"".join(replay_events(name, include_usage))
    for at in range(0, len(data), REPLAY_PIECE):
        await send({"type": "http.response.body", "body": data[at : at + REPLAY_PIECE], "more_body": True})
        await anyio.sleep(0.001)  # a separate write each time, not one coalesced segment
    await send({"type": "http.response.body", "body": b"", "more_body": False})


# Bytes per write while replaying (odd, so that pieces end anywhere: inside a CR LF pair too).
REPLAY_PIECE = 97


class Exchange:
    """One generation over one HTTP exchange. A watcher task stamps the record the moment the
    client's connection closes (uvicorn's `http.disconnect`) and cancels the generation."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        llm: FakeLLM,
        faults: Faults,
        encoder: Encoder,
        prompt_tokens: int,
        presented_key: str,
    ) -> None:
        self.receive = receive
        self.send = send
        self.llm = llm
        self.faults = faults
        self.encoder = encoder
        self.prompt_tokens = prompt_tokens
        self.presented_key = presented_key

    async def run(self, stream: bool) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch, group.cancel_scope)
            await anyio.sleep(self.faults.header_delay)
            ended = await (self._stream() if stream else self._complete())
            self.llm.close(ended)
            group.cancel_scope.cancel()
        if self.llm.record.close_reason == "dropped":
            # Return without finishing the response: uvicorn closes the connection mid-body
            # (it logs "ASGI callable returned without completing response").
            log.info("dropped the connection of %s as asked", self.llm.record.request_id)

    async def _watch(self, scope: anyio.CancelScope) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.llm.close("client_closed")
        scope.cancel()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        from app.upstreams.base import Chunk

        drop_at = self.faults.drop_at
        index = 0
        async for delta in self.llm.deltas():
            if drop_at == index:
                raise _Dropped
            yield Chunk(delta=delta)
            index += 1
        if drop_at is not None and drop_at >= index:
            raise _Dropped

    def _error(self, exc: FakeFailure) -> dict[str, Any]:
        from app.errors import UPSTREAM_ERROR, error_body

        return error_body(f"{exc} (key presented: {self.presented_key})", UPSTREAM_ERROR, None, "fake_failure")

    async def _stream(self) -> str:
        from app.wire import ChatCompletionsEncoder, usage_of

        await self.send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        encoder = self.encoder
        for frame in encoder.start():
            await self._body(frame)
        tokens = 0
        pad = b',"obfuscation":"' + b"x" * self.faults.obfuscation + b'"}\n\n'
        padded = self.faults.obfuscation > 0 and isinstance(encoder, ChatCompletionsEncoder)
        try:
            async for chunk in self._chunks():
                frame = encoder.token(chunk)
                await self._body(frame[:-3] + pad if padded else frame)  # frame ends with `}\n\n`
                tokens += 1
        except _Dropped:
            return "dropped"
        except FakeFailure as exc:
            await self._body(encoder.error(self._error(exc)))
            await self._finish(b"data: [DONE]\n\n" if isinstance(encoder, ChatCompletionsEncoder) else b"")
            return "error"
        frames = encoder.done("stop", usage_of(self.prompt_tokens, tokens))
        await self._finish(b"".join(frames))
        return "completed"

    async def _complete(self) -> str:
        from app.wire import usage_of

        parts: list[str] = []
        try:
            parts = [chunk.delta async for chunk in self._chunks()]
        except _Dropped:
            await self.send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
            return "dropped"
        except FakeFailure as exc:
            await _json(self.send, 500, self._error(exc))
            return "error"
        usage = usage_of(self.prompt_tokens, len(parts))
        await _json(self.send, 200, self.encoder.body("".join(parts), "stop", usage))
        return "completed"

    async def _body(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def _finish(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": False})


class _Dropped(Exception):
    """The `drop_at` knob fired."""


_JSON_HEADERS = [(b"content-type", b"application/json")]


async def _error(
    send: Send, status: int, message: str, type_: str, code: str | None = None, param: str | None = None
) -> None:
    from app.errors import error_body

    await _json(send, status, error_body(message, type_, param, code))


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    # The modules the first request would import (FastAPI, pydantic schemas): load them now, so
    # that the first answer is as quick as the others (relay tests run with a 1.5 s read timeout).
    for module in ("app.schemas", "app.wire", "app.errors", "app.upstreams.fake"):
        importlib.import_module(module)

    app = FakeUpstreamApp(
        model=args.model,
        api_key=args.api_key,
        defaults=FakeKnobs(
            tokens=args.tokens, tokens_per_second=args.tokens_per_second, first_token_delay=args.first_token_delay
        ),
        record_dir=args.record_dir,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(f"fake-upstream: OpenAI-compatible at http://{args.host}:{args.port}/v1 model={args.model}", flush=True)
    # timeout_keep_alive: longer than the app's pool keeps idle connections, as the kit's rule says.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", timeout_keep_alive=75)
    return 0
