"""Match a file of patient records: the same command as `medmatch match`.

python scripts/run_matcher.py --demographics data.csv [--medical medical.csv] [--out DIR]
"""

import sys

from medmatch.cli import app

if __name__ == "__main__":
    sys.exit(app(["match", *sys.argv[1:]], prog_name="run_matcher.py"))
