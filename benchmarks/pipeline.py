"""The full_match pipeline beside raw Splink, on the same generated data, in one run.

For each size: generate a population (seed 20261201, as bench_matching.py), write it as one
landing file, then in separate processes (wall time and peak RSS by measure.py):

- MedMatch: a fresh migrated database, `full_match` materialised in-process (landing with
  the bulk loader into the empty MPI, training, Splink predict, rules, offline adjudicator,
  match_results, golden records, checks), per-asset times from Dagster's step stats, F1 of
  the golden records against the ground truth;
- raw Splink (`plain_splink.py`): train + predict + cluster on the same CSV.

Both F1 scores are computed outside the time compared: raw Splink's in this process, and
MedMatch's check in its own process is timed (`evaluation_s`) and taken out of its wall
time (`pipeline_s`, what the ratio and the targets use; `wall_s` keeps the whole process).

    python benchmarks/pipeline.py --sizes 10000 100000 1000000 [--repeat 3]

`--repeat N` runs the pair N times on the same data, MedMatch then raw Splink each time: on
a shared machine the same run took 14.8 to 19.9 s, so the ratio is the median of the N
paired ratios (each pair ran back to back, under the same load), and every pair is kept in
`runs`. The `medmatch` and `plain_splink` entries are the runs of the median pair.

PostgreSQL: DATABASE_URL, else an embedded server in a temporary folder. Results go to
benchmarks/results/pipeline.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
from population import SEED, population

ROOT = Path(__file__).resolve().parents[1]


def _measure(work: Path, label: str, *args: str, env: dict | None = None) -> dict:
    out = work / f"{label}.measure.json"
    cmd = [sys.executable, str(ROOT / "benchmarks/measure.py"), str(out), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
    return json.loads(out.read_text())


def child(landing: Path, out: Path) -> None:
    """Run full_match once on DATABASE_URL and write step times, counts and F1."""
    import dagster as dg
    from sqlalchemy import text

    from medmatch.evaluation import cluster_pairwise
    from medmatch.mpi import migrate
    from medmatch.mpi.database import database_url
    from medmatch_pipeline.definitions import make_definitions
    from medmatch_pipeline.resources import Adjudicators, Landing, ModelStore, MPIDatabase

    migrate.upgrade(database_url())
    defs = make_definitions(
        landing=Landing(directory=str(landing)),
        adjudicators=Adjudicators(kind="offline"),
        models=ModelStore(directory=str(out.parent / "models")),
        database=MPIDatabase(),
    )
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("full_match").execute_in_process(
        instance=instance, run_config=quiet
    )
    steps = {
        s.step_key: round((s.end_time or 0) - (s.start_time or 0), 2)
        for s in instance.get_run_step_stats(result.run_id)
    }
    # the parts of an asset's time it reports itself (metadata named *_s)
    parts: dict[str, dict[str, float]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
        timed = {
            name: round(float(value.value), 2)
            for name, value in materialization.metadata.items()
            if name.endswith("_s") and isinstance(value.value, int | float)
        }
        if timed:
            parts[materialization.asset_key.to_user_string()] = timed
    # the F1 check below is the benchmark's, not the pipeline's: timed to be taken out, as
    # raw Splink's is computed outside its measured process
    evaluation = time.perf_counter()
    with MPIDatabase().engine().connect() as conn:
        links = dict(
            conn.execute(
                text(
                    "SELECT s.source_system || '/' || s.external_id, l.golden_id FROM record_links l"
                    " JOIN source_records s ON s.id = l.source_record_id"
                )
            ).all()
        )
    truth = pd.read_csv(landing.parent / "truth.csv", dtype=str)
    demo = pd.read_csv(landing / "demographics.csv", dtype=str)
    person = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    # the MPI keys records by source identity; refused records are left out of both
    truth_map = {
        f"{s}/{e}": person[r]
        for r, s, e in zip(
            demo["record_id"], demo["source_system"], demo["external_id"], strict=True
        )
        if f"{s}/{e}" in links
    }
    metrics = cluster_pairwise(links, truth_map)
    out.write_text(
        json.dumps(
            {
                "success": result.success,
                "evaluation_s": round(time.perf_counter() - evaluation, 2),
                "steps_s": steps,
                "parts_s": parts,
                "golden_records": len(set(links.values())),
                "precision": round(metrics.precision, 4),
                "recall": round(metrics.recall, 4),
                "f1": round(metrics.f1, 4),
            }
        )
    )


def _plain_f1(clusters_csv: Path, truth: pd.DataFrame) -> float:
    from medmatch.evaluation import cluster_pairwise

    plain = pd.read_csv(clusters_csv, dtype=str)
    clusters = dict(zip(plain["record_id"], plain["cluster_id"], strict=True))
    truth_map = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    return round(cluster_pairwise(clusters, truth_map).f1, 4)


def bench_size(
    records: int, work: Path, server_url: str, anchor: bool = True, repeat: int = 1
) -> dict:
    data = population(records)
    landing = work / "landing"
    landing.mkdir(parents=True)
    data.demographics.to_csv(landing / "demographics.csv", index=False)
    data.medical.to_csv(landing / "medical.csv", index=False)
    data.truth.to_csv(work / "truth.csv", index=False)
    pairs = [_pair(data, landing, work, server_url, anchor, i) for i in range(repeat)]
    row: dict = {"records": len(data.demographics)}
    if not anchor:
        return row | {"medmatch": pairs[0][0]}
    ratios = sorted(range(repeat), key=lambda i: pairs[i][2])
    median = ratios[repeat // 2]  # the upper middle one when repeat is even: never flattering
    ours, plain, ratio = pairs[median]
    row |= {"medmatch": ours, "plain_splink": plain, "time_ratio": ratio}
    if repeat > 1:
        row["runs"] = [
            {"medmatch_s": o["pipeline_s"], "splink_s": p["wall_s"], "ratio": r}
            for o, p, r in pairs
        ]
    return row


def _pair(data, landing: Path, work: Path, server_url: str, anchor: bool, i: int) -> tuple:  # type: ignore[no-untyped-def]
    """MedMatch on a fresh database, then raw Splink on the same CSV: (ours, plain, ratio)."""
    import psycopg

    from medmatch.mpi.database import with_database

    name = f"mm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = dict(os.environ, DATABASE_URL=with_database(server_url, name))
    child_out = work / f"child-{i}.json"
    try:
        ours = _measure(
            work, f"medmatch-{i}", __file__, "--child", str(landing), str(child_out), env=env
        )
        ours |= json.loads(child_out.read_text())
        # the process's wall time less the benchmark's own F1 check: what the ratio compares
        ours["pipeline_s"] = round(ours["wall_s"] - ours.get("evaluation_s", 0.0), 2)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    if not anchor:
        return ours, None, None
    plain = _measure(
        work,
        f"splink-{i}",
        str(ROOT / "benchmarks/plain_splink.py"),
        str(landing / "demographics.csv"),
        str(work / "plain.csv"),
    )
    plain["f1"] = _plain_f1(work / "plain.csv", data.truth)
    return ours, plain, round(ours["pipeline_s"] / plain["wall_s"], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", nargs=2, metavar=("LANDING", "OUT"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pipeline.json")
    parser.add_argument(
        "--no-anchor", action="store_true", help="skip raw Splink (quick looks, not results)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs per size")
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    from medmatch.mpi.database import libpq_url, start_embedded, stop_embedded

    home = Path(tempfile.mkdtemp(prefix="medmatch-bench-"))
    server = os.environ.get("DATABASE_URL") or start_embedded(home / "pg")
    results = {
        "command": "python benchmarks/pipeline.py --sizes "
        + " ".join(map(str, args.sizes))
        + (f" --repeat {args.repeat}" if args.repeat > 1 else ""),
        "seed": SEED,
        "sizes": [],
    }
    try:
        for size in args.sizes:
            work = home / str(size)
            url = libpq_url(server)
            row = bench_size(size, work, url, anchor=not args.no_anchor, repeat=args.repeat)
            print(json.dumps(row), flush=True)
            results["sizes"].append(row)
    finally:
        if not os.environ.get("DATABASE_URL"):
            stop_embedded(home / "pg")
        # ~5 GB at 1M (the server's data, the landing files): a full disk fails the next run
        shutil.rmtree(home, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=1))
    lines = [
        f"Command: `{results['command']}` (seed {SEED})",
        "",
        "| records | MedMatch F1 | Splink F1 | MedMatch s | (its process, F1 check included) |"
        " Splink s | ratio | MedMatch tree PSS MiB | its peak RSS MiB |"
        " its largest worker MiB | Splink MiB | slowest assets |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["sizes"]:
        m = r["medmatch"]
        p = r.get("plain_splink", {"f1": "", "wall_s": "", "peak_rss_mib": ""})
        steps = sorted(m.get("steps_s", {}).items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"| {r['records']:,} | {m.get('f1')} | {p['f1']} | {m.get('pipeline_s')} |"
            f" {m['wall_s']} | {p['wall_s']} | {r.get('time_ratio', '')} |"
            f" {m.get('peak_tree_pss_mib', '')} | {m['peak_rss_mib']} |"
            f" {m.get('largest_child_rss_mib', '')} | {p['peak_rss_mib']} |"
            f" {', '.join(f'{k} {v}s' for k, v in steps)} |"
        )
    for r in results["sizes"]:
        if "runs" in r:  # every pair, the median one above
            pairs = ", ".join(
                f"{x['medmatch_s']}/{x['splink_s']} = {x['ratio']}" for x in r["runs"]
            )
            lines.append(f"\n{r['records']:,} records, each pair (MedMatch s / Splink s): {pairs}")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
