from __future__ import annotations

import pandas as pd
import pytest

from medmatch.data.features import table_features
from medmatch.data.synthetic import SyntheticData, generate
from medmatch.matching.model import MatchModel
from medmatch.matching.training import train_model


@pytest.fixture(scope="session")
def synthetic() -> SyntheticData:
    return generate(1500, seed=11)


@pytest.fixture(scope="session")
def features(synthetic: SyntheticData) -> pd.DataFrame:
    return table_features(synthetic.demographics, synthetic.medical).frame


@pytest.fixture(scope="session")
def trained(features: pd.DataFrame) -> MatchModel:
    return train_model(features, seed=3, max_pairs_u=3e5)


@pytest.fixture(scope="session")
def feature_rows(features: pd.DataFrame) -> dict[str, dict]:
    return features.set_index("unique_id", drop=False).to_dict("index")


def lookup_body(**demographics: object) -> dict:
    """A record shaped like the architecture's lookup request body."""
    return {
        "source_system": demographics.pop("source_system", "GENERAL_HOSPITAL"),
        "external_id": demographics.pop("external_id", None),
        "record_id": demographics.pop("record_id", None),
        "demographics": demographics,
        "medical_data": demographics.pop("medical_data", {}),
    }
