"""The generated population the speed benchmarks share: one seed, sized in records.

The scripts run as `python benchmarks/<script>.py`, so this folder is on their path and
they import it as `population`. The generator is imported when a population is made: the
scripts' parent processes, which only measure children, stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medmatch.data.synthetic import SyntheticData

SEED = 20261201
RECORDS_PER_PERSON = 2.27  # measured mean of the generator (twins and sons included)


def people_for(records: int) -> int:
    """How many people to generate for about `records` records."""
    return round(records / RECORDS_PER_PERSON)


def population(records: int, seed: int = SEED) -> SyntheticData:
    """About `records` records of the benchmarks' population (`seed`)."""
    from medmatch.data.synthetic import generate

    return generate(people_for(records), seed=seed)
