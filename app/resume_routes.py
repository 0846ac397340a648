"""Routes of resumable streams (docs/resume.md):

* `GET /v1/chat/stream?...&resumable=1` starts a resumable stream (a small branch in app/routes.py
  calls `start_resumable`); the browser's automatic reconnect to the same URL carries
  `Last-Event-ID` and lands in `rejoin_last_event_id`: replay, then follow; never a regeneration.
* `POST /v1/chat/completions` and `POST /v1/responses` with `stream: true` and the request header
  `Streamkit-Resumable: 1` start one too; the response names it in `Streamkit-Stream-Id`.
* `GET /v1/streams/{id}` rejoins any resumable stream (`Last-Event-ID` header, or `?after=N`).
* `POST /v1/streams/{id}/cancel` stops its generation at once, from any replica.
* `POST /v1/responses` with `background: true, stream: true` is one too; its response id is
  `resp_<stream id>` and `GET /v1/responses/{id}?stream=true&starting_after=N` resumes it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from app.errors import APIError
from app.resume.core import RESUMABLE_HEADER, parse_event_id, resume_of
from app.upstreams.base import Generation, UpstreamStream
from app.wire import Encoder

router = APIRouter()

StreamId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


def wants_resume(request: Request, body: BaseModel | None = None) -> bool:
    """POST endpoints opt in with `Streamkit-Resumable: 1` (or true/yes); the Responses API also
    with `background: true`, as OpenAI defines it (with `stream: true`: the kit serves background
    responses as resumable streams; polling a non-streamed one is not supported)."""
    background = bool(body is not None and (body.model_extra or {}).get("background") is True)
    if background and not getattr(body, "stream", False):
        raise APIError(400, "This server supports `background: true` only with `stream: true`.", param="stream")
    asked = background or request.headers.get(RESUMABLE_HEADER, "").strip().lower() in ("1", "true", "yes")
    return asked and (body is None or bool(getattr(body, "stream", False)))


async def start_resumable(
    request: Request, route: str, generation: Generation, encoder: Encoder, upstream: UpstreamStream
) -> Response:
    return await resume_of(request).start(request, route, generation, encoder, upstream)


async def rejoin_last_event_id(request: Request, last_event_id: str) -> Response:
    sid, after = parse_event_id(last_event_id)
    return await resume_of(request).join(request, sid, after)


@router.get("/v1/streams/{sid}")
async def rejoin(
    request: Request,
    sid: StreamId,
    after: Annotated[int | None, Query(ge=-1, description="last offset already received")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Rejoin a resumable stream: replay after the offset, then follow; 204 if gone or over."""
    if last_event_id:
        given, after = parse_event_id(last_event_id)
        if given != sid:
            raise APIError(400, "Last-Event-ID names another stream.", param="Last-Event-ID")
    return await resume_of(request).join(request, sid, -1 if after is None else after)


@router.post("/v1/streams/{sid}/cancel")
async def cancel(request: Request, sid: StreamId) -> dict[str, Any]:
    """Stop a resumable stream's generation now (from any replica with Redis)."""
    return await resume_of(request).cancel(request, sid)


@router.get("/v1/responses/{response_id}")
async def retrieve_response(
    request: Request,
    response_id: Annotated[str, Path(pattern=r"^resp_[A-Za-z0-9_-]{16,64}$")],
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1)] = None,
) -> Response:
    """OpenAI's resume of a background response: `?stream=true&starting_after=N` replays the events
    after sequence number N, then follows (the sequence number is the log offset)."""
    if not stream:
        raise APIError(400, "Only `stream=true` retrieval of background responses is supported.", param="stream")
    sid = response_id.removeprefix("resp_")
    return await resume_of(request).join(request, sid, -1 if starting_after is None else starting_after)
