import time

import pandas as pd

from medmatch.data.features import SPLINK_COLUMNS, record_features, table_features
from medmatch.data.models import parse_record
from medmatch.data.synthetic import generate
from tests.conftest import lookup_body


def test_bulk_and_single_record_features_agree(synthetic):
    sample = synthetic.demographics.head(300)
    bulk = table_features(sample, synthetic.medical).frame.set_index("unique_id").to_dict("index")
    med = synthetic.medical.set_index("record_id")
    compared = 0
    for row in sample.to_dict("records"):
        clean = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        body = {
            "record_id": clean.pop("record_id"),
            "source_system": clean.pop("source_system"),
            "external_id": clean.pop("external_id"),
            "demographics": clean,
            "medical_data": med.loc[row["record_id"]].to_dict()
            if row["record_id"] in med.index
            else {},
        }
        record, _ = parse_record(body, lenient=True)
        single = record_features(record)
        for column in (*SPLINK_COLUMNS[1:], "conditions", "medications"):
            assert single[column] == bulk[record.key][column], column
        compared += 1
    assert compared == 300


def test_table_features_warns_on_bad_values_without_failing():
    table = pd.DataFrame(
        {
            "record_id": ["1", "2"],
            "source_system": ["A", "A"],
            "name_last": ["Lee", "Smith Jr"],
            "date_of_birth": ["1980-02-31", "1980-01-02"],
            "phone": ["abc", None],
        }
    )
    out = table_features(table)
    assert out.warning_counts == {"date_of_birth": 1, "phone": 1}
    assert [w.record_id for w in out.warnings] == ["1", "1"]
    assert out.frame.loc[1, "name_suffix"] == "JR" and out.frame.loc[1, "last_name"] == "smith"
    assert pd.isna(out.frame.loc[0, "dob"])


def test_generator_is_deterministic_and_has_ground_truth():
    a, b = generate(200, seed=5), generate(200, seed=5)
    pd.testing.assert_frame_equal(a.demographics, b.demographics)
    assert set(a.truth["record_id"]) == set(a.demographics["record_id"])
    assert not generate(200, seed=6).demographics.equals(a.demographics)


def test_generator_makes_the_hard_cases(synthetic):
    truth, demo = synthetic.truth, synthetic.demographics
    assert {"twin", "father", "son", "common_name"} <= set(truth["relation"].dropna())
    assert demo["source_system"].nunique() == 5
    # mixed date formats, missing fields, suffixes sometimes missing
    assert (
        demo["date_of_birth"].str.contains(r"\.").any()
        and demo["date_of_birth"].str.contains("/").any()
    )
    assert demo["phone"].isna().mean() > 0.05
    fathers = truth[truth["relation"] == "father"]["record_id"]
    suffixes = demo.set_index("record_id").loc[fathers, "name_suffix"]
    assert suffixes.isna().any() and (suffixes == "SR").any()


def test_medical_history_is_consistent_but_written_differently(synthetic):
    med = synthetic.medical.merge(synthetic.truth, on="record_id")
    from medmatch.data.clinical import condition_concepts, split_terms

    varied = 0
    for _, group in med.groupby("person_id"):
        texts = [t for t in group["conditions"] if t]
        if len(texts) < 2:
            continue
        concepts = [condition_concepts(split_terms(t)) for t in texts]
        assert all(c <= concepts[0] | set().union(*concepts) for c in concepts)
        varied += len(set(texts)) > 1
    assert varied > 10


def test_csv_and_parquet_out(tmp_path):
    data = generate(50, seed=1)
    paths = data.write(tmp_path / "csv")
    assert paths["demographics"].suffix == ".csv"
    paths = data.write(tmp_path / "pq", fmt="parquet")
    assert len(pd.read_parquet(paths["truth"])) == len(data.truth)


def test_generator_scale_is_linear():
    started = time.perf_counter()
    data = generate(5000, seed=2)
    assert len(data.demographics) > 9000
    assert time.perf_counter() - started < 30  # generous: 1M takes well under a minute


def test_record_features_of_a_single_record():
    record, _ = parse_record(lookup_body(name_first="Bill", name_last="Smith", record_id="x"))
    row = record_features(record)
    assert row["first_name"] == "bill" and "william" in row["first_name_group"]
    assert row["dob"] is None and row["birth_year"] is None
