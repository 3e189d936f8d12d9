"""Reading landing and input files: short rows, long rows, and no patient data in errors."""

import pandas as pd
import pytest

from medmatch import io
from medmatch.errors import InputFileError

HEADER = "record_id,source_system,name_first,name_last,phone\n"


def test_rows_that_stop_early_have_their_missing_fields_empty(tmp_path):
    # exporters that drop trailing empty fields: rows 2 and 3 stop before phone
    path = tmp_path / "short.csv"
    path.write_text(HEADER + "1,EHR,Ann,Lee,555-0101\n2,EHR,Bob,Ray\n3,LAB,Cy\n")
    frame, _ = io.read_demographics(path)
    assert frame["record_id"].tolist() == ["1", "2", "3"]
    assert frame["name_last"].tolist()[:2] == ["Lee", "Ray"]
    assert pd.isna(frame.loc[2, "name_last"])
    assert frame["phone"].tolist()[0] == "555-0101"
    assert frame["phone"].isna().tolist() == [False, True, True]


@pytest.mark.parametrize(
    "rows",
    [
        "1,EHR,Ann,Lee,555-0101,Zed\n",  # a long first row (the C reader shifted the file)
        "1,EHR,Ann,Lee\n2,EHR,Bob,Ray,555-0102,Zed\n",  # a long row after a short one
    ],
)
def test_a_row_with_more_fields_than_the_header_is_refused_without_its_values(tmp_path, rows):
    path = tmp_path / "long.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(InputFileError) as refused:
        io.read_table(path)
    assert "Zed" not in str(refused.value) and "Lee" not in str(refused.value)
    assert str(refused.value).startswith(f"cannot read {path}")


@pytest.mark.parametrize("short", [False, True], ids=["full rows", "a short row"])
def test_only_an_empty_field_is_missing_never_a_value_that_reads_like_null(tmp_path, short):
    """ "NA" is a surname (Na), a state code and an external id; "NULL", "None" and "nan" are
    values a source sent. Taking them for missing would drop them, or give the record
    another identity (external_id falls back to record_id)."""
    path = tmp_path / "values.csv"
    last = "" if short else ",None"
    path.write_text(
        "record_id,source_system,external_id,name_first,name_last,address_state,name_suffix\n"
        "1,A,NA,Min,NA,NA,\n"
        f"2,A,x2,,NULL,nan{last}\n"
    )
    frame = io.read_table(path)
    assert frame.loc[0, "external_id"] == "NA"
    assert frame.loc[0, "name_last"] == "NA"
    assert frame.loc[0, "address_state"] == "NA"
    assert frame.loc[1, "name_last"] == "NULL"
    assert frame.loc[1, "address_state"] == "nan"
    assert pd.isna(frame.loc[1, "name_first"])
    assert pd.isna(frame.loc[0, "name_suffix"])
    assert short == pd.isna(frame.loc[1, "name_suffix"])
