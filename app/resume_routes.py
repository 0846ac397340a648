"""Routes of resumable streams (docs/resume.md):

* `GET /v1/chat/stream?...&resumable=1` starts a resumable stream (a small branch in app/routes.py
  calls `start_resumable`); the browser's automatic reconnect to the same URL carries
  `Last-Event-ID` and lands in `rejoin_last_event_id`: replay, then follow; never a regeneration.
* `POST /v1/chat/completions` and `POST /v1/responses` with `stream: true` and the request header
  `Streamkit-Resumable: 1` start one too; the response names it in `Streamkit-Stream-Id`.
* `GET /v1/streams/{id}` rejoins any resumable stream (`Last-Event-ID` header, or `?after=N`).
* `POST /v1/streams/{id}/cancel` stops its generation at once, from any replica.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response

from app.errors import APIError
from app.resume.core import RESUMABLE_HEADER, parse_event_id, resume_of
from app.upstreams.base import Generation, UpstreamStream
from app.wire import Encoder

router = APIRouter()

StreamId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


def wants_resume(request: Request) -> bool:
    """POST endpoints opt in with `Streamkit-Resumable: 1` (or true/yes)."""
    return request.headers.get(RESUMABLE_HEADER, "").strip().lower() in ("1", "true", "yes")


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
