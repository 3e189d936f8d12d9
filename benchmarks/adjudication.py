"""The offline adjudicator's effect on data rich in hard cases, beside plain Splink.

Twins, fathers and sons and very common names are generated at five times the usual rate,
married-name changes at three times and moves at twice. MedMatch runs with and without the
offline adjudicator (same trained model); plain Splink (benchmarks/plain_splink.py) runs on
the same file. Reported: pairwise F1 of the auto-match decisions, cluster pairwise F1, pairs
sent to review, how many pairs reached the adjudicator, twins and fathers/sons merged,
pairs of one person under unrelated surnames found, and the estimated verdict weights.

    python benchmarks/adjudication.py --people 10000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from rapidfuzz.distance import JaroWinkler

from medmatch.data.features import table_features
from medmatch.data.synthetic import generate
from medmatch.evaluation import cluster_pairwise
from medmatch.evaluation.metrics import pair_list_metrics
from medmatch.evaluation.report import hard_case_merges
from medmatch.matching import PatientMatcher
from medmatch.matching.adjudication import estimate_verdict_weights
from medmatch.matching.adjudicators import ClinicalAdjudicator
from medmatch.matching.batch import feature_rows, predict_pairs
from medmatch.matching.training import train_model

ROOT = Path(__file__).resolve().parents[1]
SEED = 4242
HARD = {
    "twin_rate": 0.1,
    "father_son_rate": 0.1,
    "common_name_rate": 0.1,
    "married_rate": 0.6,
    "move_rate": 0.5,
}


def surname_change_pairs(features: pd.DataFrame, truth: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of one person's records whose surnames are unrelated (a marriage, not a typo)."""
    person = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    rows = features[["unique_id", "first_name", "last_name"]].dropna()
    rows = rows.assign(person=rows["unique_id"].map(person))
    out = []
    for _, group in rows.groupby("person"):
        recs = list(group.itertuples(index=False))
        for i, a in enumerate(recs):
            for b in recs[i + 1 :]:
                swapped = a.first_name == b.last_name or a.last_name == b.first_name
                if not swapped and JaroWinkler.similarity(a.last_name, b.last_name) < 0.8:
                    out.append((a.unique_id, b.unique_id))
    return out


def _scores(result, truth: pd.DataFrame, changed: list[tuple[str, str]]) -> dict:
    truth_map = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    auto = result.pairs[result.pairs["decision"] == "auto_match"]
    decisions = pair_list_metrics(
        zip(auto["record_id_1"], auto["record_id_2"], strict=True), truth_map
    )
    clusters = dict(zip(result.clusters["record_id"], result.clusters["cluster_id"], strict=True))
    hard = hard_case_merges(clusters, truth)
    found = sum(clusters[a] == clusters[b] for a, b in changed)
    return {
        "auto_match_f1": round(decisions.f1, 4),
        "cluster_f1": round(cluster_pairwise(clusters, truth_map).f1, 4),
        "review_required": int((result.pairs["decision"] == "review_required").sum()),
        "twins_merged": f"{hard['twins']['wrongly_merged']}/{hard['twins']['families']}",
        "father_son_merged": f"{hard['father_son']['wrongly_merged']}/{hard['father_son']['families']}",
        "surname_change_pairs_found": f"{found}/{len(changed)}",
        "adjudicator_counts": {k: v for k, v in result.stats.items() if k.startswith("ai_")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/adjudication.json")
    args = parser.parse_args()
    data = generate(args.people, seed=SEED, **HARD)
    features = table_features(data.demographics, data.medical).frame
    model = train_model(features, seed=1)
    # the verdict weights, estimated on these candidate pairs with the ground truth
    scored = predict_pairs(features, model, 0.01)
    rows = feature_rows(features, set(scored["unique_id_l"]) | set(scored["unique_id_r"]))
    truth_map = dict(zip(data.truth["record_id"], data.truth["person_id"], strict=True))
    labelled = [
        (rows[a], rows[b], truth_map[a] == truth_map[b])
        for a, b in zip(scored["unique_id_l"], scored["unique_id_r"], strict=True)
    ]
    weights = estimate_verdict_weights(ClinicalAdjudicator(), labelled)
    changed = surname_change_pairs(features, data.truth)
    results = {
        "command": f"python benchmarks/adjudication.py --people {args.people}",
        "records": len(features),
        "seed": SEED,
        "hard_case_rates": HARD,
        "estimated_verdict_weights": {v.value: w for v, w in weights.items()},
        "medmatch_without_adjudicator": _scores(
            PatientMatcher(model).dedupe_features(features), data.truth, changed
        ),
        "medmatch_offline_adjudicator": _scores(
            PatientMatcher(model, adjudicator=ClinicalAdjudicator()).dedupe_features(features),
            data.truth,
            changed,
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = data.write(tmp)
        out = Path(tmp) / "plain.csv"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks/plain_splink.py"),
                str(paths["demographics"]),
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        plain = pd.read_csv(out, dtype=str)
        clusters = dict(zip(plain["record_id"], plain["cluster_id"], strict=True))
        hard = hard_case_merges(clusters, data.truth)
        results["plain_splink"] = {
            "cluster_f1": round(cluster_pairwise(clusters, truth_map).f1, 4),
            "twins_merged": f"{hard['twins']['wrongly_merged']}/{hard['twins']['families']}",
            "father_son_merged": f"{hard['father_son']['wrongly_merged']}/{hard['father_son']['families']}",
            "surname_change_pairs_found": (
                f"{sum(clusters[a] == clusters[b] for a, b in changed)}/{len(changed)}"
            ),
        }
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
