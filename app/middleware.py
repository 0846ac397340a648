"""Pure ASGI middleware (BaseHTTPMiddleware would buffer and break streaming)."""

from __future__ import annotations

import json
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import INVALID_REQUEST, APIError, error_response

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Accept a well-formed `X-Request-ID` or make one; expose it (and the arrival time) in scope state
    and the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex[:24]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["received_at"] = time.perf_counter()
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        if incoming is not None and request_id != incoming:
            # A hostile or malformed id (over-long, control characters, a path) is refused, never
            # echoed, logged, forwarded upstream or used to name a record file.
            message = (
                f"X-Request-ID must be 1 to 64 characters from A-Z a-z 0-9 . _ - (got {len(incoming)} "
                "characters); leave it out and the server makes one."
            )
            response = error_response(400, message, INVALID_REQUEST, param="X-Request-ID", code="invalid_request_id")
            await response(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Answer 413 with an OpenAI-style body when a request body exceeds `max_bytes`; and, for the
    API's JSON routes (POST under /v1/), 415 unless the body is declared JSON and 400 unless it is
    UTF-8 holding a JSON object (`json_body_problem`), before any route or upstream sees it.

    The body is read here (it is small by construction) and replayed to the app, so an oversized
    chunked upload is refused as soon as it crosses the limit, not after it was all buffered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        problem = json_body_problem(scope, b"".join(chunks))
        if problem is not None:
            await error_response(problem.status, problem.message, problem.type, problem.param, problem.code)(
                scope, receive, send
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            f"Request body exceeds the limit of {self.max_bytes} bytes.",
            INVALID_REQUEST,
            code="request_too_large",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


# A JSON string escape of a UTF-16 surrogate: legal JSON, but alone it is no Unicode character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_body_problem(scope: Scope, body: bytes) -> APIError | None:
    """Why a POST body to the JSON API cannot be a request object, or None (FastAPI then parses it)."""
    if scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
        return None
    media_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if not body and not media_type:
        return None  # a body-less action (POST /v1/streams/{id}/cancel, /v1/stream-tokens): nothing to declare
    if media_type != "application/json" and not media_type.endswith("+json"):
        got = f"Content-Type {media_type}" if media_type else "no Content-Type"
        return APIError(415, f"Send the body as application/json (got {got}).", code="unsupported_media_type")
    try:
        text = body.decode("utf-8")  # strict: also refuses encoded surrogates and cut characters
    except UnicodeDecodeError as exc:
        return APIError(400, f"The body is not valid UTF-8 (byte {exc.start}: {exc.reason}).")
    stripped = text.lstrip(" \t\r\n")
    if stripped and not stripped.startswith("{") and _is_json(stripped):
        return APIError(400, "The body must be a JSON object ({...}), not a JSON " + _json_kind(stripped) + ".")
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return APIError(400, "The body is not valid Unicode: a \\u escape holds an unpaired UTF-16 surrogate.")
        except ValueError:
            return None  # not JSON at all: FastAPI says so
    return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_kind(text: str) -> str:
    return {"[": "array", '"': "string", "n": "null", "t": "boolean", "f": "boolean"}.get(text[0], "number")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
