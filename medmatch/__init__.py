"""MedMatch: an open-source Master Patient Index.

Library mode lives in `medmatch.data`, `medmatch.matching` and `medmatch.evaluation`;
none of them needs a database, Dagster or a web server.
"""

__version__ = "0.1.0"
