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
