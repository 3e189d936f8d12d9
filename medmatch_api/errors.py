"""Errors as HTTP answers: MedMatch's own errors become a 4xx naming the field; validation
errors name the field and never echo the value; anything else is a 500 that says nothing
about the request (ids only in the log: an exception's text may carry patient data)."""

from __future__ import annotations

import logging
import uuid

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error(
            "incident %s: %s on %s %s",
            incident,
            type(exc).__name__,
            request.method,
            request.scope.get("route").path if request.scope.get("route") else "?",
        )
        return JSONResponse(
            {"detail": f"internal error (incident {incident})"},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
