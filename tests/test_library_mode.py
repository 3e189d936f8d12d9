"""Library mode stays light: importing the matcher loads no server, database or pipeline."""

import json
import subprocess
import sys


def test_import_matching_loads_no_sqlalchemy_dagster_fastapi_or_splink() -> None:
    code = (
        "import json, sys\n"
        "import medmatch.matching\n"
        "from medmatch.matching import PatientMatcher\n"
        "m = PatientMatcher()\n"
        "r = m.match_pair({'source_system': 'A', 'record_id': '1', 'demographics': {'name_first': 'Ann', 'name_last': 'Lee'}},"
        " {'source_system': 'B', 'record_id': '2', 'demographics': {'name_first': 'Ann', 'name_last': 'Lee'}})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'dagster', 'fastapi', 'splink', 'duckdb'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
