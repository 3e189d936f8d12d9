"""Rebuild the model shipped inside the package (medmatch/matching/resources/default_model.json).

python scripts/train_default_model.py            # 10,000 synthetic people, seed 7
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medmatch.data.features import table_features
from medmatch.data.synthetic import generate
from medmatch.matching.training import train_model

TARGET = Path(__file__).resolve().parents[1] / "medmatch/matching/resources/default_model.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = generate(args.people, seed=args.seed)
    features = table_features(data.demographics, data.medical).frame
    model = train_model(features, seed=args.seed, max_pairs_u=2e6)
    model.metadata |= {"trained_on": f"synthetic people={args.people} seed={args.seed}"}
    model.save(TARGET)
    print(f"{model.version} -> {TARGET}")


if __name__ == "__main__":
    main()
