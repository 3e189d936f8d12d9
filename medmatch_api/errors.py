"""Errors as HTTP answers: MedMatch's own errors become a 4xx naming the field; validation
errors name the field and never echo the value; anything else is a 500 that says nothing
about the request (ids only in the log: an exception's text may carry patient data)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from medmatch.errors import ConflictError, InvalidFieldError, MedMatchError, NotFoundError

log = logging.getLogger(__name__)


def field_error(field: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": ["body", *field.split(".")], "msg": reason, "type": "value_error"}]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "loc": list(error.get("loc", ())),
                "msg": str(error.get("msg", "invalid")).removeprefix("Value error, "),
                "type": error.get("type", "value_error"),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(InvalidFieldError)
    async def _bad_field(_: Request, exc: InvalidFieldError) -> JSONResponse:
        return field_error(exc.field, exc.reason)

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(MedMatchError)
    async def _refused(_: Request, exc: MedMatchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)


class Incidents:
    """The outermost guard: an unexpected exception becomes a 500 naming an incident id, and
    the log gets the id, the exception's class and the route, never its text or traceback
    (either may carry patient data). Nothing is re-raised, so the server logs nothing more."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            incident = uuid.uuid4().hex[:12]
            route = scope.get("route")
            log.error(
                "incident %s: %s on %s %s",
                incident,
                type(exc).__name__,
                scope.get("method"),
                getattr(route, "path", "?"),
            )
            if not started:
                response = JSONResponse(
                    {"detail": f"internal error (incident {incident})"},
                    status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
                )
                await response(scope, receive, send)
