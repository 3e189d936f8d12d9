"""Run a Python script as __main__ and record its wall time and peak memory.

    python benchmarks/measure.py OUT.json script.py [args...]

Peak memory is the process's maximum resident set size (getrusage), which includes DuckDB's
native allocations, not only Python objects. The largest of its child processes (the
forked workers of `medmatch.parallel`, a Splink or DuckDB helper) is reported beside it:
a forked worker's RSS counts the pages it shares with the parent too. What the process and
its workers held at once is `peak_tree_pss_mib`, sampled by `memory_sampler.py`.
"""

import json
import os
import resource
import runpy
import subprocess
import sys
import time
import traceback
from pathlib import Path

out, script, *args = sys.argv[1:]
sys.argv = [script, *args]
tree_out = Path(out).with_suffix(".pss")
sampler = subprocess.Popen(
    [
        sys.executable,
        str(Path(__file__).with_name("memory_sampler.py")),
        str(os.getpid()),
        str(tree_out),
    ]
)
started = time.perf_counter()
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
except BaseException:
    traceback.print_exc()  # a failed run is still measured and reported, as failed
    code = 1
finally:
    sampler.terminate()
    sampler.wait()
wall = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
tree_pss = float(tree_out.read_text()) if tree_out.exists() else None
with open(out, "w") as f:
    json.dump(
        {
            "wall_s": round(wall, 2),
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "largest_child_rss_mib": round(child_kib / 1024, 1),
            "peak_tree_pss_mib": tree_pss,
            "exit": code,
        },
        f,
    )
sys.exit(code)
