"""The FastAPI app: `uvicorn medmatch_api.main:app` (or `medmatch serve`).

Routers are assembled here under /api/v1 (health and the WebSockets at the root); the
context (database, services, Dagster) is built when the app starts, once per process.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from medmatch.config import get_settings
from medmatch_api import errors
from medmatch_api.context import ApiContext
from medmatch_api.limits import BodyLimit
from medmatch_api.routers import console, golden, health, matching, me, patients, review, ws

API_V1 = "/api/v1"


def create_app(context_factory: Callable[[], ApiContext] = ApiContext.create) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = context_factory()
        app.state.context = context
        await context.events.start()
        context.matching  # noqa: B018 - the model loaded now, not on the first lookup
        # what the process has built so far lives as long as it does: out of the collector's
        # sight, a full collection (~80 ms over the ~240K objects of the app, the model and
        # Dagster, pausing every request of this worker) scans only what requests left
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await context.events.stop()
            context.close()

    app = FastAPI(
        title="MedMatch",
        version="0.1.0",
        summary="A Master Patient Index: real-time lookup, golden records, review, batch runs.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=get_settings().api_max_body_bytes)
    app.add_middleware(errors.Incidents)  # added last: the outermost
    app.include_router(health.router)
    api = APIRouter(prefix=API_V1)
    for module in (patients, matching, golden, review, me):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(ws.router)
    app.include_router(console.router)
    return app


app = create_app()
