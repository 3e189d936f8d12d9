"""Each level, rendered for DuckDB and for Python, gives the same answer pair by pair."""

import duckdb
import pytest

from medmatch.matching import default_comparisons
from medmatch.matching import levels as lv

PAIRS = [
    (
        {"first_name": "william", "first_name_group": ["bill", "william"], "last_name": "smith"},
        {"first_name": "bill", "first_name_group": ["bill", "william"], "last_name": "smith"},
    ),
    (
        {"first_name": "jon", "first_name_group": ["jon"], "last_name": "smyth"},
        {"first_name": "john", "first_name_group": ["john", "johnny"], "last_name": "smith"},
    ),
    (
        {"first_name": "smith", "first_name_group": ["smith"], "last_name": "anna"},
        {"first_name": "anna", "first_name_group": ["anna", "ann"], "last_name": "smith"},
    ),
    (
        {"first_name": None, "first_name_group": None, "last_name": "lee"},
        {"first_name": "ann", "first_name_group": ["ann"], "last_name": None},
    ),
    (  # Jaro-Winkler exactly 0.8, on the level's threshold (rapidfuzz's score_cutoff says 0)
        {"first_name": "shelly", "first_name_group": ["shelly"], "last_name": "rowe"},
        {"first_name": "zachary", "first_name_group": ["zachary"], "last_name": "rogers"},
    ),
]
DATES = ["1980-03-04", "1980-04-03", "1980-03-14", "1981-03-04", "1980-11-22", "1966-01-02", None]
OTHER = [
    {
        "phone": "+16175550123",
        "email": "ann.lee@example.org",
        "address": "12 main st",
        "postal_code": "02139",
        "ssn": "123456789",
        "sex": "F",
        "birth_year": "1980",
    },
    {
        "phone": "+16175550132",
        "email": "ann.lee@example.com",
        "address": "12 main st apt 2",
        "postal_code": "02139",
        "ssn": "123456798",
        "sex": "F",
        "birth_year": "1980",
    },
    {
        "phone": "+16175559999",
        "email": "al@example.com",
        "address": "99 elm rd",
        "postal_code": "02141",
        "ssn": None,
        "sex": "M",
        "birth_year": "1981",
    },
    {
        "phone": None,
        "email": None,
        "address": None,
        "postal_code": None,
        "ssn": "987654321",
        "sex": None,
        "birth_year": None,
    },
    {
        "phone": "+16175550124",
        "email": "ann.lee@example.org",
        "address": "12 main st",
        "postal_code": "02239",
        "ssn": "123456780",
        "sex": "F",
        "birth_year": "1980",
    },
    {
        "phone": "+442079460958",
        "email": "bo@example.net",
        "address": "12 maine st",
        "postal_code": None,
        "ssn": "987654312",
        "sex": "O",
        "birth_year": "1966",
    },
]


def _rows():
    rows = []
    for a, b in PAIRS:
        for i, da in enumerate(DATES):
            db = DATES[(i + 1) % len(DATES)]
            for j, oa in enumerate(OTHER):
                ob = OTHER[(j + i) % len(OTHER)]
                rows.append((a | oa | {"dob": da}, b | ob | {"dob": db}))
                rows.append((a | oa | {"dob": da}, a | oa | {"dob": da}))
    return rows


COLUMNS = sorted({c for a, b in _rows() for c in (*a, *b)})


def _pairs_table() -> duckdb.DuckDBPyConnection:
    """All test pairs as one DuckDB table with <col>_l and <col>_r columns."""
    con = duckdb.connect()
    types = {c: ("VARCHAR[]" if c == "first_name_group" else "VARCHAR") for c in COLUMNS}
    cols = [f"{c}_{side} {types[c]}" for side in ("l", "r") for c in COLUMNS]
    con.execute(f"CREATE TABLE pairs (pair_id INTEGER, {', '.join(cols)})")
    rows = [
        [i, *(left.get(c) for c in COLUMNS), *(right.get(c) for c in COLUMNS)]
        for i, (left, right) in enumerate(_rows())
    ]
    con.executemany(f"INSERT INTO pairs VALUES ({', '.join('?' * (1 + 2 * len(COLUMNS)))})", rows)
    return con


@pytest.fixture(scope="module")
def pairs_db():
    return _pairs_table()


@pytest.mark.parametrize("comparison", default_comparisons(), ids=lambda c: c.name)
def test_sql_and_python_agree_on_every_level(comparison, pairs_db):
    rows = _rows()
    checked = 0
    for level in comparison.levels:
        if level.is_else_level:
            continue
        sql = f"SELECT pair_id, CASE WHEN {level.sql_condition} THEN TRUE ELSE FALSE END FROM pairs ORDER BY pair_id"
        answers = pairs_db.execute(sql).fetchall()
        for (_pair_id, in_sql), (left, right) in zip(answers, rows, strict=True):
            assert level.matches(left, right) == in_sql, (comparison.name, level.label, left, right)
        checked += len(rows)
    assert checked > 100


def test_levels_reached():
    first = default_comparisons()[0]
    labels = [lvl.label for lvl in first.levels]
    got = [labels[first.level_index(a, b)] for a, b in PAIRS]
    assert got == [
        "nickname",
        "jaro-winkler >= 0.92",
        "swapped with last name",
        "null",
        "all other",
    ]
    dob = default_comparisons()[2]
    names = [lvl.label for lvl in dob.levels]
    assert (
        names[dob.level_index({"dob": "1980-03-04"}, {"dob": "1980-04-03"})]
        == "day and month swapped"
    )
    assert (
        names[dob.level_index({"dob": "1980-03-04"}, {"dob": "1980-03-14"})]
        == "two of year, month, day agree"
    )


def test_comparisons_reject_bad_level_lists():
    with pytest.raises(ValueError, match="null level"):
        from medmatch.matching.comparisons import Comparison

        Comparison("x", "x", (lv.ExactLevel("x"), lv.ElseLevel()))
    with pytest.raises(ValueError, match="else level"):
        Comparison("x", "x", (lv.NullLevel("x"), lv.ExactLevel("x")))


def test_gamma_numbering_follows_splink():
    comp = default_comparisons()[3]  # sex: null, exact, else
    assert [comp.gamma(i) for i in range(3)] == [-1, 1, 0]
