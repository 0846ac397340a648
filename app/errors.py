"""OpenAI-style errors: one shape for HTTP error bodies and for in-band `error` events.

    {"error": {"message": "...", "type": "...", "param": null, "code": null}}

Failures known before the first byte become an HTTP status with this body; failures after it
become an `error` event carrying the same object (see app.wire).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.ending import Ending

log = logging.getLogger("app.errors")

# Error `type` values the app emits. Those a stream can end with are its endings' (app/ending.py).
INVALID_REQUEST = "invalid_request_error"
NOT_FOUND = "not_found_error"
UPSTREAM_ERROR = Ending.UPSTREAM_ERROR.error_type
UPSTREAM_TIMEOUT = Ending.UPSTREAM_TIMEOUT.error_type
SERVER_SHUTDOWN = Ending.SHUTDOWN.error_type
SERVER_ERROR = Ending.SERVER_ERROR.error_type


class APIError(Exception):
    """An error with an HTTP status and an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    type: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type, param, code), status_code=status, headers=headers)


def validation_message(errors: Sequence[Any]) -> tuple[str, str | None]:
    """The message and `param` of the first of pydantic's validation errors."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request.", None
    msg = first.get("msg", "invalid request")
    return (f"Invalid value for '{param}': {msg}" if param else msg), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc.errors())
        return error_response(400, message, INVALID_REQUEST, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = NOT_FOUND if exc.status_code == 404 else INVALID_REQUEST
        return error_response(exc.status_code, str(exc.detail), type_, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "The server had an error while processing your request.", SERVER_ERROR)
