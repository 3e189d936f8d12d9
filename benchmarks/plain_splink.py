"""The anchor: a plain Splink dedupe, written the way a Splink user would write it.

Light cleaning (lower-case names, dates parsed with pandas, digits-only phones), Splink's
own comparison library, tutorial-style blocking, u by random sampling, m by EM, clustering
at 0.9. No MedMatch code.

    python benchmarks/plain_splink.py demographics.csv clusters.csv
"""

import logging
import sys

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

source, target = sys.argv[1], sys.argv[2]
raw = pd.read_csv(source, dtype=str)
df = pd.DataFrame(
    {
        "unique_id": raw["record_id"],
        "first_name": raw["name_first"].str.lower().str.strip(),
        "surname": raw["name_last"].str.lower().str.strip(),
        "dob": pd.to_datetime(raw["date_of_birth"], format="mixed", errors="coerce").dt.strftime(
            "%Y-%m-%d"
        ),
        "sex": raw["gender"].str.upper().str[0],
        "email": raw["email"].str.lower(),
        "phone": raw["phone"].str.replace(r"\D", "", regex=True).str[-10:],
        "address": raw["address_line"].str.lower(),
        "postcode": raw["postal_code"],
    }
)

settings = SettingsCreator(
    link_type="dedupe_only",
    comparisons=[
        cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("dob", input_is_string=True),
        cl.ExactMatch("sex"),
        cl.EmailComparison("email"),
        cl.ExactMatch("phone"),
        cl.LevenshteinAtThresholds("address", 2),
        cl.ExactMatch("postcode"),
    ],
    blocking_rules_to_generate_predictions=[
        block_on("first_name", "surname"),
        block_on("dob"),
        block_on("email"),
        block_on("phone"),
    ],
)
db = DuckDBAPI()
linker = Linker(db.register(df), settings, log_level=logging.ERROR)
linker.training.estimate_probability_two_random_records_match(
    [block_on("first_name", "surname", "dob")], recall=0.7
)
linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(
    block_on("first_name", "surname")
)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
predictions = linker.inference.predict(threshold_match_probability=0.05)
clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.9)
clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]].rename(
    columns={"unique_id": "record_id"}
).to_csv(target, index=False)
