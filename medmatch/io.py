"""Reading input tables (CSV or Parquet) and writing results, with clear errors."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import pandas as pd

from medmatch.data.fields import DEMOGRAPHIC_FIELDS
from medmatch.errors import InputFileError

logger = logging.getLogger(__name__)

IDENTITY_COLUMNS = ("record_id", "source_system", "external_id")
DEMOGRAPHICS_COLUMNS = IDENTITY_COLUMNS + DEMOGRAPHIC_FIELDS
MEDICAL_COLUMNS = ("record_id", "conditions", "medications")
# pyarrow's message for a row of another width than the header (the row's text follows)
_OTHER_WIDTH = re.compile(r"Expected (?P<expected>\d+) columns, got (?P<got>\d+)")
# Every value as text, as sent: only an empty field is missing ("NA" is a surname, a state and
# an external id; pandas' default null markers would drop them)
_AS_SENT: dict = {"dtype": str, "keep_default_na": False, "na_values": [""]}


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
        return pd.read_csv(path, **_AS_SENT, engine="pyarrow")
    except ValueError as exc:
        # (its message quotes the row: patient data, never passed on)
        width = _OTHER_WIDTH.search(str(exc))
        if width is None or int(width["got"]) > int(width["expected"]):
            raise InputFileError(f"cannot read {path}: {type(exc).__name__}") from None
        return _read_short_rows(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read {path}: {type(exc).__name__}") from None


def _read_short_rows(path: Path) -> pd.DataFrame:
    """A CSV some of whose rows stop early (exporters that drop trailing empty fields): the
    missing fields are empty. A row with more fields than the header is still refused: the
    C reader, which fills short rows, would silently drop its extra values."""
    try:
        with path.open(newline="", encoding="utf-8") as source:
            rows = csv.reader(source)
            width = len(next(rows, []))
            longer = any(len(row) > width for row in rows)
        if not longer:
            return pd.read_csv(path, **_AS_SENT, index_col=False)
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"cannot read {path}: {type(exc).__name__}") from None
    raise InputFileError(f"cannot read {path}: a row has more fields than the header")


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
