"""Who may call the API: bearer tokens with a role, and the audit of every patient-data read.

A token is 32 random bytes shown once at creation; only its SHA-256 is stored (a random
secret needs no slow hash: there is nothing to brute-force). Roles are cumulative:
reviewer < operator < admin; `source` stands apart (it submits and looks up records).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from medmatch.errors import ConflictError, InvalidFieldError, NotFoundError
from medmatch.mpi import schema as t

ROLES = t.ROLES
TOKEN_PREFIX = "mm_"
# NOTIFYed at every revocation: API processes forget the tokens they had verified
TOKENS_CHANNEL = "medmatch_tokens"

# what each role may do; higher roles include the ones below them
_GRANTS: dict[str, frozenset[str]] = {
    "source": frozenset({"submit", "lookup"}),
    "reviewer": frozenset({"read", "review"}),
}
_GRANTS["operator"] = _GRANTS["reviewer"] | {"submit", "lookup", "curate", "batch"}
_GRANTS["admin"] = _GRANTS["operator"] | {"tokens"}


@dataclass(frozen=True)
class Principal:
    """The caller behind a token."""

    token_id: int
    name: str
    role: str
    source_system: str | None = None

    def may(self, permission: str) -> bool:
        return permission in _GRANTS[self.role]


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    source_system: str | None
    revoked: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, role: str, source_system: str | None = None) -> tuple[int, str]:
        """A new token: (its id, the secret, shown only now)."""
        if role not in ROLES:
            raise InvalidFieldError("role", f"must be one of {', '.join(ROLES)}")
        if source_system and role != "source":
            raise InvalidFieldError("source_system", "only a source token binds to a system")
        if not name.strip():
            raise InvalidFieldError("name", "must not be empty")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "role": role, "source_system": source_system}
        try:
            with self.engine.begin() as conn:
                token_id = conn.execute(
                    insert(t.ApiToken)
                    .values(**row, token_hash=_digest(secret))
                    .returning(t.ApiToken.id)
                ).scalar_one()
        except IntegrityError as exc:
            raise ConflictError(f"a token named {name!r} exists already") from exc
        return int(token_id), secret

    def verify(self, secret: str) -> Principal | None:
        """The principal of a live token, or None (unknown or revoked)."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        query = select(
            t.ApiToken.id, t.ApiToken.name, t.ApiToken.role, t.ApiToken.source_system
        ).where(t.ApiToken.token_hash == _digest(secret), t.ApiToken.revoked_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return Principal(int(row.id), row.name, row.role, row.source_system) if row else None

    def revoke(self, name: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.ApiToken)
                .where(t.ApiToken.name == name, t.ApiToken.revoked_at.is_(None))
                .values(revoked_at=func.now())
            ).rowcount
            conn.execute(select(func.pg_notify(TOKENS_CHANNEL, "")))  # sent at commit
        if not done:
            raise NotFoundError("live token", name)

    def list(self) -> list[TokenInfo]:
        query = select(t.ApiToken).order_by(t.ApiToken.id)
        with self.engine.connect() as conn:
            return [
                TokenInfo(r.id, r.name, r.role, r.source_system, r.revoked_at is not None)
                for r in conn.execute(query)
            ]


class VerifiedTokens:
    """`TokenStore.verify` with each live token's principal remembered for `ttl_s` seconds
    (0: not at all): a request then costs no query. A revocation is NOTIFYed
    (TOKENS_CHANNEL) and every API process listening forgets what it knew at once; one that
    missed it refuses the token within ttl_s all the same. Unknown tokens are not kept."""

    MAX_ENTRIES = 10_000

    def __init__(
        self, store: TokenStore, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store, self.ttl_s, self.clock = store, ttl_s, clock
        self._known: dict[str, tuple[Principal, float]] = {}
        self._forgotten = 0  # forget() calls so far: an answer read before one is not kept

    def known(self, secret: str) -> Principal | None:
        """The principal of a token verified less than ttl_s ago; None: ask `verify`."""
        known = self._known.get(_digest(secret))
        return known[0] if known is not None and known[1] > self.clock() else None

    def forget(self) -> None:
        """A token was revoked somewhere: verify every token again."""
        self._forgotten += 1
        self._known.clear()

    def verify(self, secret: str) -> Principal | None:
        if (principal := self.known(secret)) is not None:
            return principal
        digest, now, forgotten = _digest(secret), self.clock(), self._forgotten
        principal = self.store.verify(secret)
        # a revocation heard while the query ran may postdate what it read: answered, not kept
        if principal is None or self.ttl_s <= 0 or forgotten != self._forgotten:
            self._known.pop(digest, None)
            return principal
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()
        self._known[digest] = (principal, now + self.ttl_s)
        return principal


class AccessAudit:
    """Writes who read which patient data (ids only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, who: Principal, action: str, resource: str, resource_ids: Iterable[object]
    ) -> None:
        rows = [
            {
                "token_id": who.token_id,
                "actor": who.name,
                "action": action,
                "resource": resource,
                "resource_id": str(rid),
            }
            for rid in resource_ids
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(t.AccessAudit), rows)

    def of(self, resource: str, resource_id: object) -> list[dict[str, object]]:
        query = (
            select(t.AccessAudit.actor, t.AccessAudit.action, t.AccessAudit.created_at)
            .where(
                t.AccessAudit.resource == resource,
                t.AccessAudit.resource_id == str(resource_id),
            )
            .order_by(t.AccessAudit.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
