"""The reference app: `create_app()` wires settings, upstream, drain, middleware and routes."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import auth, store
from app.drain import Drain, install_signal_handlers
from app.errors import install_error_handlers
from app.limits import Gate
from app.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.resume_routes import router as resume_router
from app.routes import router
from app.settings import Settings, get_settings
from app.upstreams import make_upstream


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    problem = auth.startup_problem(settings)  # issue #20: no open relay (streamkit serve checks first)
    if problem:
        raise RuntimeError(problem)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Only a real server's main thread owns signals (not a test client's thread).
        if threading.current_thread() is threading.main_thread():
            install_signal_handlers(app.state.drain)
        yield
        await app.state.upstream.aclose()
        await store.aclose(app.state.redis)

    app = FastAPI(title="streamkit reference app", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.upstream = make_upstream(settings)
    app.state.drain = Drain(settings.drain_seconds)
    app.state.redis = store.connect(settings)
    # Client keys (issue #20): a bad API_KEYS_FILE stops the worker here, before it serves anything.
    keys = auth.KeyRing(settings.api_keys_file) if settings.api_keys_file else None
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(auth.router)
    app.include_router(resume_router)  # issue 19: GET /v1/streams/{id}, POST /v1/streams/{id}/cancel
    # The demo page (plain HTML + JS, no build step) at `/`.
    app.mount("/", StaticFiles(directory=Path(__file__).parent / "static", html=True), name="static")
    # Outermost last: the request id (and arrival time) exist before the body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Auth and stream budgets (issue #20) before the body is read: a refused request costs nothing.
    app.add_middleware(Gate, settings=settings, ring=keys, redis=app.state.redis)
    app.add_middleware(RequestIdMiddleware)
    return app
