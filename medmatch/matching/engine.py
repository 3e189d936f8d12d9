"""The DuckDB connection Splink runs on: bounded memory, spilling to disk past the bound."""

from __future__ import annotations

import tempfile
from typing import Any

from medmatch.config import get_settings


def duckdb_connection() -> Any:
    """A fresh in-memory DuckDB connection with MedMatch's memory limit."""
    import duckdb

    settings = get_settings()
    return duckdb.connect(
        config={
            "memory_limit": settings.duckdb_memory_limit,
            "temp_directory": settings.duckdb_temp_directory or tempfile.gettempdir(),
            "preserve_insertion_order": False,
        }
    )


def duckdb_api() -> Any:
    """A Splink DuckDBAPI on a fresh connection (`duckdb_connection`)."""
    from splink import DuckDBAPI

    return DuckDBAPI(connection=duckdb_connection())
