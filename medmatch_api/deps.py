"""FastAPI dependencies, named: the context, and the caller with a permission checked.

They are coroutines: FastAPI runs a plain function dependency on its thread pool, a hop
per dependency per request. Only a token not verified lately goes to a thread (a query)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from medmatch.mpi.access import Principal
from medmatch_api.context import ApiContext

bearer = HTTPBearer(auto_error=False, description="a token from `medmatch token create`")


async def get_context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]


Context = Annotated[ApiContext, Depends(get_context)]


async def authenticate(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    principal = None
    if credentials is not None:
        secret = credentials.credentials
        principal = context.tokens.known(secret) or await run_in_threadpool(
            context.tokens.verify, secret
        )
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require(permission: str):  # type: ignore[no-untyped-def]
    async def check(who: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not who.may(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role} may not {permission}")
        return who

    return check


Submitter = Annotated[Principal, Depends(require("submit"))]
Reader = Annotated[Principal, Depends(require("read"))]
Reviewer = Annotated[Principal, Depends(require("review"))]
Curator = Annotated[Principal, Depends(require("curate"))]
Operator = Annotated[Principal, Depends(require("batch"))]
