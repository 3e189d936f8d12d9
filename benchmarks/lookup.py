"""Real-time lookups against a loaded MPI: the initial bulk load, then lookup latency and
throughput at 1 and at 8 concurrent clients.

A population is generated (seed 20261201; 440,000 people make about a million records),
all but a held-out sample of its records are bulk-loaded into a fresh, migrated database
(`medmatch.mpi.bulk.load_records`: normalisation, COPY, indexes, ANALYZE), then the
held-out records are looked up one by one (`MatchingService.lookup`, the shipped model, no
adjudicator). Most held-out records belong to people whose other records are loaded, so a
lookup finds candidates and, mostly, links to that person's golden record.

    python benchmarks/lookup.py                  # ~1M records
    python benchmarks/lookup.py --people 20000   # ~45k records, a quick run

PostgreSQL: DATABASE_URL when set (a database is created on it and dropped afterwards),
else an embedded server in a temporary folder, stopped and removed at the end. Results go
to benchmarks/results/lookup.json and benchmarks/results/lookup.md.

Concurrent clients are worker processes, each with its own connection and its own copy of
the model, as a deployment runs several API worker processes: threads of one process would
take turns on its GIL and measure that instead. Each worker is started and warmed before the
clock starts. The machine is shared and has 2 cores: the numbers are noisy, and the clients
share both cores with the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
from population import SEED

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"p50_ms": 10.0, "p99_ms": 50.0, "throughput_8": 200.0, "load_s": 180.0}


def _bodies(demographics, medical) -> list[dict]:
    """The held-out rows as lookup bodies ({"source_system", ..., "demographics": {...}})."""
    med = {r["record_id"]: r for r in medical.to_dict("records")}
    demo = demographics.astype(object).where(demographics.notna(), None)
    bodies = []
    for row in demo.to_dict("records"):
        ids = {k: row.pop(k) for k in ("record_id", "source_system", "external_id")}
        m = med.get(ids["record_id"], {})
        history = {k: m.get(k) for k in ("conditions", "medications")}
        bodies.append(ids | {"demographics": row, "medical_data": history})
    return bodies


def _latency(times_ms: list[float]) -> dict:
    xs = np.array(times_ms)
    return {
        "p50_ms": round(float(np.percentile(xs, 50)), 2),
        "p95_ms": round(float(np.percentile(xs, 95)), 2),
        "p99_ms": round(float(np.percentile(xs, 99)), 2),
        "mean_ms": round(float(xs.mean()), 2),
        "max_ms": round(float(xs.max()), 2),
    }


def _lookup_all(service, records: list) -> tuple[list, list, Counter]:
    """Look `records` up one after the other: latencies (ms), results (None: failed), errors."""
    times, results, errors = [], [], Counter()
    for _person, record in records:
        t = time.perf_counter()
        try:
            result = service.lookup(record)
        except Exception as exc:  # counted, not fatal: a benchmark reports what failed
            errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"] += 1
            results.append(None)
            continue
        times.append((time.perf_counter() - t) * 1000)
        results.append(result)
    return times, results, errors


def _service(url: str, synchronous_commit: str):  # type: ignore[no-untyped-def]
    from medmatch.matching import PatientMatcher
    from medmatch.mpi.database import make_engine, sqlalchemy_url
    from medmatch.mpi.services.matching import MatchingService
    from medmatch.mpi.unit_of_work import SqlAlchemyUnitOfWork, session_factory

    # libpq's options: the server setting for this connection's transactions only
    options = f"options=-c%20synchronous_commit%3D{synchronous_commit}"
    engine = make_engine(f"{sqlalchemy_url(url)}&{options}", pool_size=1)
    factory = session_factory(engine)
    service = MatchingService(
        lambda: SqlAlchemyUnitOfWork(factory), PatientMatcher(adjudicator=None)
    )
    return engine, service


def _client(index, url, commit, warmup, records, start, out) -> None:  # type: ignore[no-untyped-def]
    """Client `index`, a process: its own engine and model, warmed up, timed from `start`."""
    logging.basicConfig(level=logging.ERROR)
    engine, service = _service(url, commit)
    _lookup_all(service, warmup)
    start.wait()
    began, cpu = time.monotonic(), time.process_time()
    times, results, errors = _lookup_all(service, records)
    cpu = time.process_time() - cpu
    out.put((index, began, time.monotonic(), times, results, errors, cpu))
    engine.dispose()


def server_cpu_s(pg_dir: Path | None) -> float | None:
    """CPU seconds the embedded server has used: the postmaster, the backends it has reaped
    (each lookup client's backend ends with its client) and the live ones."""
    if pg_dir is None or not (pg_dir / "postmaster.pid").exists():
        return None
    postmaster = int((pg_dir / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # own and reaped children's
        elif int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_lookups(
    url: str,
    records: list,
    clients: int,
    warmup: list,
    commit: str = "on",
    pg_dir: Path | None = None,
) -> tuple[dict, list]:
    """Look `records` up from `clients` processes (each takes every clients-th record), with
    synchronous_commit `commit`: latency, throughput, CPU per lookup (clients, and the
    embedded server's when pg_dir is given) and the results, in records' order."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(clients + 1), ctx.Queue()
    shares = [records[i::clients] for i in range(clients)]
    warm = [warmup[i::clients] for i in range(clients)]
    workers = [
        ctx.Process(
            target=_client, args=(i, url, commit, warm[i], shares[i], start, out), daemon=True
        )
        for i in range(clients)
    ]
    for w in workers:
        w.start()
    start.wait()
    server_before = server_cpu_s(pg_dir)
    done = [out.get() for _ in workers]
    for w in workers:
        w.join()
    server_after = server_cpu_s(pg_dir)  # the clients' backends have ended: reaped
    wall = max(d[2] for d in done) - min(d[1] for d in done)
    times = [x for d in done for x in d[3]]
    errors: Counter = sum((d[5] for d in done), Counter())
    results: list = [None] * len(records)
    for index, _began, _ended, _times, share_results, _errors, _cpu in done:
        results[index::clients] = share_results
    ok = [r for r in results if r is not None]
    candidates = [r.candidates_scored for r in ok]
    stats = {
        "clients": clients,
        "synchronous_commit": commit,
        "lookups": len(ok),
        "errors": dict(errors),
        "wall_s": round(wall, 2),
        "throughput_per_s": round(len(ok) / wall, 1),
        **_latency(times),
        # where the two cores went: the clients' Python (scoring, SQLAlchemy, psycopg) and
        # the server's processes (its background writers and autovacuum too) over the run
        "cpu_ms_per_lookup": {
            "clients": round(sum(d[6] for d in done) * 1000 / max(len(records), 1), 2),
            "server": round((server_after - server_before) * 1000 / max(len(records), 1), 2)
            if server_before is not None and server_after is not None
            else None,
        },
        "decisions": dict(Counter(r.decision for r in ok)),
        "resends": sum(not r.created for r in ok),
        "candidates_scored": {
            "mean": round(statistics.fmean(candidates), 1) if candidates else 0,
            "p50": int(np.percentile(candidates, 50)) if candidates else 0,
            "max": max(candidates, default=0),
        },
    }
    return stats, results


def _outcomes(url: str, lookups: list, results: list, person_of: dict, loaded_persons: set):
    """Did each lookup land with its person? (the golden record it was linked to holds a
    record of the same person, or it is a new identity of a person not loaded)."""
    import psycopg

    by_golden: dict[str, list[tuple[str, str]]] = {}
    goldens = sorted({r.golden_record_id for r in results if r is not None})
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT l.golden_id, s.source_system, s.external_id, s.id
               FROM record_links l JOIN source_records s ON s.id = l.source_record_id
               WHERE l.golden_id = ANY(%s)""",
            (goldens,),
        ).fetchall()
    for golden_id, system, external, source_id in rows:
        by_golden.setdefault(golden_id, []).append((system, external, source_id))
    counts: Counter = Counter()
    for (person, _record), result in zip(lookups, results, strict=True):
        if result is None:
            continue
        others = {
            person_of.get((system, external))
            for system, external, source_id in by_golden.get(result.golden_record_id, [])
            if source_id != result.source_record_id
        }
        known = person in loaded_persons
        if result.decision == "auto_match":
            counts["auto_match_same_person" if person in others else "auto_match_other_person"] += 1
        elif result.decision == "new_identity":
            counts["new_identity_person_loaded" if known else "new_identity_person_new"] += 1
        else:
            counts["review_person_loaded" if known else "review_person_new"] += 1
    return dict(sorted(counts.items()))


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=440_000)
    parser.add_argument("--holdout", type=int, default=3000, help="records looked up")
    parser.add_argument(
        "--warmup", type=int, default=10, help="lookups of each client before measuring"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--synchronous-commit",
        nargs="+",
        default=["on", "off"],
        choices=["on", "off"],
        help="server setting of the lookups' transactions, one set of runs each (the first is"
        " the headline; off: a crash can lose the last commits, never corrupt data)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pg-dir", type=Path, help="embedded server folder (default: a temp)")
    parser.add_argument("--out", type=Path, default=RESULTS / "lookup.json")
    args = parser.parse_args()
    command = " ".join(["python benchmarks/lookup.py", *sys.argv[1:]])

    import psycopg

    from medmatch.data.models import parse_record
    from medmatch.data.synthetic import generate
    from medmatch.mpi.bulk import load_records
    from medmatch.mpi.database import (
        libpq_url,
        sqlalchemy_url,
        start_embedded,
        stop_embedded,
        with_database,
    )
    from medmatch.mpi.migrate import upgrade

    temp = None
    if os.environ.get("DATABASE_URL"):
        server = libpq_url(os.environ["DATABASE_URL"])
        pg_dir = None
    else:
        if args.pg_dir is None:
            temp = Path(tempfile.mkdtemp(prefix="medmatch-lookup-"))
            pg_dir = temp / "pg"
        else:
            pg_dir = args.pg_dir
        server = start_embedded(pg_dir)
    name = f"mm_lookup_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        url = with_database(server, name)
        upgrade(sqlalchemy_url(url))

        t = time.perf_counter()
        data = generate(args.people, seed=args.seed)
        generate_s = time.perf_counter() - t
        demo, truth = data.demographics, data.truth
        print(f"generated {len(demo):,} records of {args.people:,} people in {generate_s:.1f}s")
        rng = np.random.default_rng(args.seed)
        held = np.zeros(len(demo), dtype=bool)
        held[rng.choice(len(demo), size=min(args.holdout, len(demo)), replace=False)] = True
        loaded_ids = set(demo["record_id"][~held])
        loaded_medical = data.medical[data.medical["record_id"].isin(loaded_ids)]

        t = time.perf_counter()
        load = load_records(url, demo[~held].reset_index(drop=True), loaded_medical)
        load_wall = time.perf_counter() - t
        print(f"loaded {load['records']:,} records in {load_wall:.1f}s: {json.dumps(load)}")
        # the load's dirty pages are written now, not during the measured lookups
        t = time.perf_counter()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
        except psycopg.Error:  # not allowed to this role: the lookups share the writes
            pass
        checkpoint_s = time.perf_counter() - t

        person = dict(zip(truth["record_id"], truth["person_id"], strict=True))
        loaded_frame = demo[~held]
        person_of = {
            (s, e): person[r]
            for s, e, r in zip(
                loaded_frame["source_system"],
                loaded_frame["external_id"],
                loaded_frame["record_id"],
                strict=True,
            )
        }
        loaded_persons = {person[r] for r in loaded_ids}
        held_demo = demo[held].reset_index(drop=True)
        lookups, refused = [], 0
        for body in _bodies(held_demo, data.medical[~data.medical["record_id"].isin(loaded_ids)]):
            try:
                record, _ = parse_record(body, lenient=True)
            except ValueError:
                refused += 1  # no name at all: the API would refuse it too
                continue
            lookups.append((person[body["record_id"]], record))
            person_of[(record.source_system, record.external_id)] = person[body["record_id"]]
        with_person_loaded = sum(p in loaded_persons for p, _ in lookups)
        print(
            f"{len(lookups):,} held-out records to look up ({with_person_loaded:,} of people "
            f"with loaded records), {refused} refused"
        )

        # each client of each run warms up on records of its own, then the rest is shared
        plan = [(commit, c) for commit in args.synchronous_commit for c in args.clients]
        warm_total = args.warmup * sum(c for _, c in plan)
        warm, rest = lookups[:warm_total], lookups[warm_total:]
        share = len(rest) // len(plan)
        runs, used = [], 0
        for i, (commit, clients) in enumerate(plan):
            part = rest[i * share : (i + 1) * share]
            run_warm = warm[used : used + args.warmup * clients]
            used += len(run_warm)
            stats, results = run_lookups(url, part, clients, run_warm, commit, pg_dir)
            stats["outcomes"] = _outcomes(url, part, results, person_of, loaded_persons)
            runs.append(stats)
            print(json.dumps(stats))
        results = {
            "command": command,
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "postgres": pg_version,
                "server": "DATABASE_URL" if pg_dir is None else "embedded (sized by MedMatch)",
            },
            "seed": args.seed,
            "people": args.people,
            "records_generated": len(demo),
            "generate_s": round(generate_s, 1),
            "load": load | {"wall_s": round(load_wall, 1), "checkpoint_s": round(checkpoint_s, 1)},
            "lookup_records": len(lookups),
            "lookup_records_person_loaded": with_person_loaded,
            "warmup_per_client": args.warmup,
            "runs": runs,
            "targets": TARGETS,
            "verdict": {"synchronous_commit": args.synchronous_commit[0]}
            | _verdict(
                [r for r in runs if r["synchronous_commit"] == args.synchronous_commit[0]],
                load_wall,
            ),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        write_markdown(results, args.out.with_suffix(".md"))
        print(args.out.with_suffix(".md").read_text())
    finally:
        try:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass
        if pg_dir is not None:
            stop_embedded(pg_dir)
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _verdict(runs: list[dict], load_s: float) -> dict:
    by = {r["clients"]: r for r in runs}
    out = {"load_s": round(load_s, 1), "load_ok": load_s <= TARGETS["load_s"]}
    if 1 in by:
        out |= {
            "p50_ms_1_client": by[1]["p50_ms"],
            "p50_ok": by[1]["p50_ms"] <= TARGETS["p50_ms"],
            "p99_ms_1_client": by[1]["p99_ms"],
            "p99_ok": by[1]["p99_ms"] <= TARGETS["p99_ms"],
        }
    if 8 in by:
        out |= {
            "throughput_8_clients": by[8]["throughput_per_s"],
            "throughput_ok": by[8]["throughput_per_s"] >= TARGETS["throughput_8"],
        }
    return out


def write_markdown(results: dict, path: Path) -> None:
    load, m = results["load"], results["machine"]
    t = load["timings"]
    lines = [
        f"Command: `{results['command']}` (seed {results['seed']}, {m['cpus']} CPUs, "
        f"PostgreSQL {m['postgres']}, {m['server']}; a shared machine: noisy numbers)",
        "",
        f"Bulk load of {load['records']:,} records ({load['blocking_keys']:,} blocking keys, "
        f"{load['golden_records']:,} golden records; {load['rejected']} refused, "
        f"{load['resent']} re-sends): **{load['wall_s']} s** (target <= {TARGETS['load_s']:.0f} s)"
        f" = normalise {t['normalise_s']} s + COPY "
        f"{sum(v for k, v in t.items() if k.startswith('copy_')):.1f} s + indexes "
        f"{t['indexes_s']} s + analyze {t['analyze_s']} s; checkpoint afterwards "
        f"{load['checkpoint_s']} s.",
        "",
        f"Lookups of {results['lookup_records']:,} held-out records "
        f"({results['lookup_records_person_loaded']:,} of people with loaded records); each "
        f"client is a process with its own connection, {results['warmup_per_client']} warm-up "
        "lookups each before the clock starts; shipped model, no adjudicator.",
        "",
        "The headline is synchronous_commit=on, PostgreSQL's default (a commit returns once its "
        "WAL is flushed). With off, a commit returns before the flush: a server crash can lose "
        "the last few hundred milliseconds of lookups, it cannot corrupt the database; a "
        "deployment may choose it for the lookup role and it is reported beside.",
        "",
        "| synchronous_commit | clients | lookups | p50 ms | p95 ms | p99 ms | max ms | lookups/s |"
        " CPU ms per lookup (clients / server) |"
        " auto_match | review_required | new_identity | candidates (mean / max) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        d = r["decisions"]
        lines.append(
            f"| {r['synchronous_commit']} | {r['clients']} | {r['lookups']:,} | {r['p50_ms']} | "
            f"{r['p95_ms']} | "
            f"{r['p99_ms']} | {r['max_ms']} | {r['throughput_per_s']} | "
            f"{r['cpu_ms_per_lookup']['clients']} / {r['cpu_ms_per_lookup']['server']} | "
            f"{d.get('auto_match', 0)} | {d.get('review_required', 0)} | "
            f"{d.get('new_identity', 0)} | {r['candidates_scored']['mean']} / "
            f"{r['candidates_scored']['max']} | {sum(r['errors'].values())} |"
        )
    lines += ["", "Outcomes (against the generator's truth):", ""]
    for r in results["runs"]:
        lines.append(
            f"- synchronous_commit={r['synchronous_commit']}, {r['clients']} client(s): "
            f"{r['outcomes']}"
        )
    v = results["verdict"]
    lines += [
        "",
        f"Targets: p50 <= {TARGETS['p50_ms']:.0f} ms and p99 <= {TARGETS['p99_ms']:.0f} ms "
        f"(1 client), >= {TARGETS['throughput_8']:.0f} lookups/s (8 clients), load <= "
        f"{TARGETS['load_s']:.0f} s, at synchronous_commit={v['synchronous_commit']}: "
        f"{json.dumps(v)}",
    ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
