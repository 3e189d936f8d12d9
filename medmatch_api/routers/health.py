"""GET /health: is each part up? Never a stack trace, no token needed."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter
from sqlalchemy import text

from medmatch_api.deps import Context
from medmatch_api.schemas import HealthOut

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 2.0


@router.get("/health", response_model=HealthOut)
def health(context: Context) -> HealthOut:
    database = dagster = "down"
    try:
        with context.mpi.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "up"
    except Exception:
        log.warning("health: the database is down")
    try:
        context.batch.instance.get_runs(limit=1)
        dagster = "up"
    except Exception:
        log.warning("health: the Dagster instance is down")
    ollama = "not_configured"
    if context.settings.ollama_base_url:
        try:
            url = context.settings.ollama_base_url.rstrip("/") + "/api/tags"
            ollama = "up" if httpx.get(url, timeout=PROBE_TIMEOUT_S).is_success else "down"
        except httpx.HTTPError:
            ollama = "down"
    healthy = database == dagster == "up" and ollama != "down"
    return HealthOut(
        status="ok" if healthy else "degraded", database=database, dagster=dagster, ollama=ollama
    )
