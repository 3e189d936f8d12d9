"""Who the caller is: the console shows the name and role and takes review items for them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from medmatch.mpi.access import Principal
from medmatch_api.deps import authenticate

router = APIRouter(tags=["tokens"])
PERMISSIONS = ("submit", "lookup", "read", "review", "curate", "batch", "tokens")


class MeOut(BaseModel):
    name: str
    role: str
    source_system: str | None
    permissions: list[str]


@router.get("/me", response_model=MeOut)
def me(who: Annotated[Principal, Depends(authenticate)]) -> MeOut:
    """The token's name (a reviewer's identity), its role and what that role may do."""
    return MeOut(
        name=who.name,
        role=who.role,
        source_system=who.source_system,
        permissions=[p for p in PERMISSIONS if who.may(p)],
    )
