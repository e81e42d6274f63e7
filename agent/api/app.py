"""``create_app(settings) -> FastAPI``: the Artemis service (videos, conversations over SSE, tools, OpenAI).

Run it with ``artemis serve`` or ``uvicorn agent.api.app:app_from_env --factory``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from agent.api.deps import require_api_key
from agent.api.errors import BodyLimitMiddleware, InternalErrorMiddleware, install_error_handlers
from agent.api.openapi import ArtemisAPI, errors
from agent.api.request_id import RequestIdMiddleware, install_log_filter
from agent.api.routes import conversations, health, openai_compat, users, videos
from agent.api.routes.tools import tools_router
from agent.api.runtime import build_service
from agent.api.settings import Settings
from tools.describers import Describer
from tools.registry import ToolRegistry, default_tools

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: Settings | None = None,
    *,
    describer: Describer | None = None,
    tools: ToolRegistry | None = None,
) -> FastAPI:
    """The service. Models load in the lifespan (at startup), never at import.

    ``describer`` replaces the one ``settings.model_dir`` names (tests: a slow or fake describer); ``tools``
    (default: :func:`tools.registry.default_tools`) are served at ``POST /tools/{name}``.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_filter()
        app.state.runtime = await run_in_threadpool(build_service, settings, describer=describer)
        logger.info(
            "Artemis service ready: data_dir=%s model=%s", settings.data_dir, app.state.runtime.model_name
        )
        try:
            yield
        finally:
            runtime, app.state.runtime = app.state.runtime, None
            runtime.close()

    app = ArtemisAPI(
        title="Artemis",
        version="0.1.0",
        summary="Referential understanding of videos: upload a video, draw a box, ask.",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    # the last added is the outermost: request id -> body limit -> 500s with the request id -> the routes
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, exempt=frozenset({("POST", "/videos")})
    )
    app.add_middleware(RequestIdMiddleware)
    secured = [Depends(require_api_key)]
    app.include_router(health.router)
    needs_models = errors(401, 503)  # a key (when keys are on) and the runtime (503 while it starts)
    app.include_router(videos.router, dependencies=secured, responses=needs_models)
    app.include_router(conversations.router, dependencies=secured, responses=needs_models)
    app.include_router(
        tools_router(tools if tools is not None else default_tools()),
        dependencies=secured,
        responses=needs_models,
    )
    app.include_router(openai_compat.router, dependencies=secured, responses=needs_models)
    app.include_router(users.router, dependencies=secured, responses=needs_models)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from ``ARTEMIS_*`` environment variables."""
    return create_app(Settings())
