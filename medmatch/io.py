"""Reading input tables (CSV or Parquet) and writing results, with clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from medmatch.data.fields import DEMOGRAPHIC_FIELDS
from medmatch.errors import InputFileError

logger = logging.getLogger(__name__)

IDENTITY_COLUMNS = ("record_id", "source_system", "external_id")
DEMOGRAPHICS_COLUMNS = IDENTITY_COLUMNS + DEMOGRAPHIC_FIELDS
MEDICAL_COLUMNS = ("record_id", "conditions", "medications")


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file as strings; InputFileError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            return frame.astype(dict.fromkeys(frame.columns, "string")).astype(object)
        # pyarrow's reader: multi-threaded, a third of the C reader's time on a 100K-record
        # file, and it refuses a row with more fields than the header, which the C reader
        # took as an index column, shifting every value of the file one column right
        return pd.read_csv(path, dtype=str, keep_default_na=True, na_values=[""], engine="pyarrow")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read {path}: {type(exc).__name__}") from None


def _check_columns(
    frame: pd.DataFrame, path: Path, known: tuple[str, ...], required: tuple[str, ...]
) -> tuple[pd.DataFrame, list[str]]:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputFileError(f"{path.name}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in frame.columns if c not in known]
    if frame["record_id"].isna().any():
        raise InputFileError(f"{path.name}: record_id is empty in some rows")
    return frame.drop(columns=unknown), unknown


def read_demographics(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The demographics table and the names of the columns it ignored."""
    path = Path(path)
    frame = read_table(path)
    frame, unknown = _check_columns(
        frame, path, DEMOGRAPHICS_COLUMNS, ("record_id", "source_system")
    )
    if "name_first" not in frame.columns and "name_last" not in frame.columns:
        raise InputFileError(f"{path.name}: needs a name column (name_first or name_last)")
    if frame["record_id"].duplicated().any():
        raise InputFileError(f"{path.name}: record_id is not unique")
    return frame, unknown


def read_medical(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    path = Path(path)
    frame = read_table(path)
    return _check_columns(frame, path, MEDICAL_COLUMNS, ("record_id",))
