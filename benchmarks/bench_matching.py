"""MedMatch's CLI beside a plain Splink dedupe, on the same generated data, in one run.

For each size: wall time, peak memory, pairs compared and cluster F1 of both, and the
ratios; then the real-time scorer's time per `match_pair`. Results go to
benchmarks/results/matching.json and benchmarks/results/matching.md.

    python benchmarks/bench_matching.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from population import SEED, population

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _measure(label: str, work: Path, script: str, *args: str) -> dict:
    out = work / f"{label}.json"
    cmd = [sys.executable, str(ROOT / "benchmarks/measure.py"), str(out), script, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def _f1(clusters_csv: Path, truth: pd.DataFrame) -> dict:
    from medmatch.evaluation import cluster_pairwise
    from medmatch.evaluation.report import hard_case_merges

    clusters = pd.read_csv(clusters_csv, dtype=str)
    truth_map = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    cluster_map = dict(zip(clusters["record_id"], clusters["cluster_id"], strict=True))
    metrics = cluster_pairwise(cluster_map, truth_map)
    hard = hard_case_merges(cluster_map, truth)
    return {
        "precision": round(metrics.precision, 4),
        "recall": round(metrics.recall, 4),
        "f1": round(metrics.f1, 4),
        "twins_merged": f"{hard['twins']['wrongly_merged']}/{hard['twins']['families']}",
        "father_son_merged": f"{hard['father_son']['wrongly_merged']}/{hard['father_son']['families']}",
    }


def _pairs_compared(frame: pd.DataFrame, rules: list) -> int:
    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    db = DuckDBAPI()
    counts = count_comparisons_from_blocking_rules(
        db.register(frame),
        blocking_rules=rules,
        link_type="dedupe_only",
        record_sample_proportion=1.0,
    )
    return int(counts[-1]["cumulative_comparison_count"])


def _plain_frame(demo: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": demo["record_id"],
            "first_name": demo["name_first"].str.lower().str.strip(),
            "surname": demo["name_last"].str.lower().str.strip(),
            "dob": pd.to_datetime(
                demo["date_of_birth"], format="mixed", errors="coerce"
            ).dt.strftime("%Y-%m-%d"),
            "email": demo["email"].str.lower(),
            "phone": demo["phone"].str.replace(r"\D", "", regex=True).str[-10:],
        }
    )


def bench_size(records: int, work: Path) -> dict:
    from splink import block_on

    from medmatch.data.features import table_features
    from medmatch.matching.blocking import splink_blocking_rules

    t = time.perf_counter()
    data = population(records)
    gen_s = time.perf_counter() - t
    folder = work / f"n{records}"
    paths = data.write(folder)
    n = len(data.demographics)
    print(f"[{n:,} records] generated in {gen_s:.1f}s", flush=True)

    ours = _measure(
        f"medmatch_{records}",
        work,
        str(ROOT / "scripts/run_matcher.py"),
        "--demographics",
        str(paths["demographics"]),
        "--medical",
        str(paths["medical"]),
        "--out",
        str(folder / "out"),
        "--seed",
        "1",
    )
    ours |= _f1(folder / "out" / "clusters.csv", data.truth)
    summary = json.loads((folder / "out" / "summary.json").read_text())
    ours |= {
        k: summary[k]
        for k in (
            "pairs_scored",
            "auto_match",
            "review_required",
            "normalise_s",
            "train_s",
            "score_s",
            "decide_s",
            "cluster_s",
        )
        if k in summary
    }
    print(f"  medmatch     {ours}", flush=True)

    plain = _measure(
        f"splink_{records}",
        work,
        str(ROOT / "benchmarks/plain_splink.py"),
        str(paths["demographics"]),
        str(folder / "plain_clusters.csv"),
    )
    plain |= _f1(folder / "plain_clusters.csv", data.truth)
    print(f"  plain splink {plain}", flush=True)

    feats = table_features(data.demographics, data.medical).frame
    from medmatch.matching.training import splink_input

    ours["pairs_compared"] = _pairs_compared(splink_input(feats), splink_blocking_rules())
    plain["pairs_compared"] = _pairs_compared(
        _plain_frame(data.demographics),
        [block_on("first_name", "surname"), block_on("dob"), block_on("email"), block_on("phone")],
    )
    return {
        "records": n,
        "people": int(data.truth["person_id"].nunique()),
        "generate_s": round(gen_s, 2),
        "medmatch": ours,
        "plain_splink": plain,
        "time_ratio": round(ours["wall_s"] / plain["wall_s"], 3),
        "memory_ratio": round(ours["peak_rss_mib"] / plain["peak_rss_mib"], 3),
        "f1_delta": round(ours["f1"] - plain["f1"], 4),
    }


def bench_realtime(repeats: int = 3000) -> dict:
    from medmatch.data.synthetic import generate
    from medmatch.matching import PatientMatcher

    data = generate(800, seed=SEED)
    demo = data.demographics.astype(object).where(data.demographics.notna(), None)
    bodies = []
    for row in demo.to_dict("records"):
        ids = {k: row.pop(k) for k in ("record_id", "source_system", "external_id")}
        bodies.append(ids | {"demographics": row})
    matcher = PatientMatcher()
    from medmatch.matching.matcher import as_record

    records = []
    for body in bodies:
        try:
            records.append(as_record(body))
        except ValueError:
            continue  # strict mode refuses the generator's deliberately bad values
    times = []
    for i in range(repeats):
        a, b = records[i % len(records)], records[(i * 7 + 1) % len(records)]
        t = time.perf_counter_ns()
        matcher.match_pair(a, b)
        times.append((time.perf_counter_ns() - t) / 1e6)
    raw_times = []
    for i in range(repeats):  # the same through dicts, as the API receives them
        a, b = bodies[i % len(bodies)], bodies[(i * 7 + 1) % len(bodies)]
        t = time.perf_counter_ns()
        try:
            matcher.match_pair(a, b)
        except ValueError:
            continue
        raw_times.append((time.perf_counter_ns() - t) / 1e6)

    def summary(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {
            "median_ms": round(statistics.median(xs), 4),
            "p99_ms": round(xs[int(len(xs) * 0.99)], 4),
            "calls": len(xs),
        }

    return {"validated_records": summary(times), "from_dicts": summary(raw_times)}


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=RESULTS / "matching.json")
    args = parser.parse_args()
    results = {
        "command": "python benchmarks/bench_matching.py --sizes " + " ".join(map(str, args.sizes)),
        "machine": {
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
        "seed": SEED,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            results["sizes"].append(bench_size(size, Path(tmp)))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
    results["realtime"] = bench_realtime()
    args.out.write_text(json.dumps(results, indent=1))
    write_markdown(results, args.out.with_suffix(".md"))
    print(json.dumps(results["realtime"]))


def write_markdown(results: dict, path: Path) -> None:
    lines = [
        f"Command: `{results['command']}` (seed {results['seed']}, {results['machine']['cpus']} CPUs)",
        "",
        "| records | MedMatch F1 | Splink F1 | MedMatch s | Splink s | time ratio | MedMatch MiB | Splink MiB | pairs compared (MedMatch / Splink) | twins merged (MedMatch / Splink) | father/son merged (MedMatch / Splink) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["sizes"]:
        m, p = s["medmatch"], s["plain_splink"]
        lines.append(
            f"| {s['records']:,} | {m['f1']} | {p['f1']} | {m['wall_s']} | {p['wall_s']} | "
            f"{s['time_ratio']} | {m['peak_rss_mib']} | {p['peak_rss_mib']} | "
            f"{m['pairs_compared']:,} / {p['pairs_compared']:,} | {m['twins_merged']} / {p['twins_merged']} | "
            f"{m['father_son_merged']} / {p['father_son_merged']} |"
        )
    if "realtime" in results:
        rt = results["realtime"]
        lines += [
            "",
            "Real-time `match_pair`: "
            f"median {rt['validated_records']['median_ms']} ms, p99 {rt['validated_records']['p99_ms']} ms "
            "(validated records); "
            f"median {rt['from_dicts']['median_ms']} ms, p99 {rt['from_dicts']['p99_ms']} ms (from dicts).",
        ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
