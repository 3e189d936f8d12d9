"""Run a Python script as __main__ and record its wall time and peak memory.

    python benchmarks/measure.py OUT.json script.py [args...]

Peak memory is the process's maximum resident set size (getrusage), which includes DuckDB's
native allocations, not only Python objects.
"""

import json
import resource
import runpy
import sys
import time

out, script, *args = sys.argv[1:]
sys.argv = [script, *args]
started = time.perf_counter()
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
wall = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(out, "w") as f:
    json.dump(
        {"wall_s": round(wall, 2), "peak_rss_mib": round(peak_kib / 1024, 1), "exit": code}, f
    )
sys.exit(code)
