"""Lookup over HTTP: `POST /api/v1/matching/lookup` against `medmatch serve` with about a
million golden records loaded; latency p50/p95/p99 and throughput at 1, 8 and 32
concurrent clients.

A population is generated (seed 20261201; 440,000 people make about a million records),
all but a held-out sample is bulk-loaded (`medmatch.mpi.bulk.load_records`; every loaded
record starts as its own golden record), a source token is created, and `medmatch serve`
starts in a subprocess (uvicorn, `--workers` processes, default configuration: the offline
adjudicator). The held-out records are then looked up over HTTP by an asyncio client
(httpx, one connection per concurrent client), each record once.

    python benchmarks/api.py                    # ~1M records
    python benchmarks/api.py --people 20000     # a quick run

Target: p99 <= 100 ms at 8 clients. The machine is shared and has 2 cores, which the
server, PostgreSQL and the client share: the numbers are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEED = 20261201
TARGET_P99_MS_8 = 100.0


def _bodies(demographics, medical) -> list[dict]:
    history = {
        r["record_id"]: {k: r[k] for k in ("conditions", "medications") if isinstance(r[k], str)}
        for r in medical.to_dict("records")
    }
    fields = [
        c for c in demographics.columns if c not in ("record_id", "source_system", "external_id")
    ]
    out = []
    for row in demographics.to_dict("records"):
        demo = {f: str(row[f]) for f in fields if isinstance(row[f], str) and row[f]}
        out.append(
            {
                "source_system": row["source_system"],
                "external_id": str(row["external_id"]),
                "demographics": demo,
                "medical_data": {
                    k: [t.strip() for t in v.split(";") if t.strip()]
                    for k, v in history.get(row["record_id"], {}).items()
                },
            }
        )
    return out


def _latency(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": round(ordered[-1], 2),
    }


async def _run(base: str, token: str, bodies: list[dict], clients: int) -> dict:
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    times: list[float] = []
    statuses: Counter[str] = Counter()
    decisions: Counter[str] = Counter()

    async def client() -> None:
        limits = httpx.Limits(max_connections=1)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            base_url=base, headers=headers, limits=limits, timeout=60
        ) as http:
            while not queue.empty():
                body = queue.get_nowait()
                t = time.perf_counter()
                answer = await http.post("/api/v1/matching/lookup", json=body)
                times.append((time.perf_counter() - t) * 1000)
                statuses[str(answer.status_code)] += 1
                if answer.status_code == 200:
                    decisions[answer.json()["decision"]] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "lookups": len(times),
        **_latency(times),
        "lookups_per_s": round(len(times) / wall, 1),
        "statuses": dict(statuses),
        "decisions": dict(decisions),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=440_000)
    parser.add_argument("--holdout", type=int, default=4000, help="records looked up")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=RESULTS / "api.json")
    args = parser.parse_args()
    command = " ".join(["python benchmarks/api.py", *sys.argv[1:]])

    import psycopg

    from medmatch.data.synthetic import generate
    from medmatch.mpi.access import TokenStore
    from medmatch.mpi.bulk import load_records
    from medmatch.mpi.database import (
        make_engine,
        sqlalchemy_url,
        start_embedded,
        stop_embedded,
        with_database,
    )
    from medmatch.mpi.migrate import upgrade

    temp = Path(tempfile.mkdtemp(prefix="medmatch-api-bench-"))
    pg_dir = temp / "pg"
    server_url = start_embedded(pg_dir)
    name = f"mm_api_{uuid.uuid4().hex[:8]}"
    process = None
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        url = with_database(server_url, name)
        upgrade(sqlalchemy_url(url))
        data = generate(args.people, seed=args.seed)
        demo = data.demographics
        rng = np.random.default_rng(args.seed)
        held = np.zeros(len(demo), dtype=bool)
        held[
            rng.choice(len(demo), size=min(args.holdout + args.warmup, len(demo)), replace=False)
        ] = True
        loaded = set(demo["record_id"][~held])
        t = time.perf_counter()
        load = load_records(
            url,
            demo[~held].reset_index(drop=True),
            data.medical[data.medical["record_id"].isin(loaded)],
        )
        load_s = time.perf_counter() - t
        print(f"loaded {load['records']:,} records in {load_s:.1f}s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            golden = conn.execute("SELECT count(*) FROM golden_records").fetchone()[0]
        engine = make_engine(sqlalchemy_url(url))
        _, token = TokenStore(engine).create("benchmark", "source")
        engine.dispose()
        bodies = _bodies(
            demo[held].reset_index(drop=True), data.medical[~data.medical["record_id"].isin(loaded)]
        )
        bodies = [
            b
            for b in bodies
            if b["demographics"].get("name_first") or b["demographics"].get("name_last")
        ]

        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DAGSTER_HOME": str(temp / "dagster"),
            "MEDMATCH_API_WORKERS": str(args.workers),
        }
        env.pop("DAGSTER_PG_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "medmatch", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(temp / "serve.log").open("wb"),
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError("medmatch serve did not come up; see " + str(temp / "serve.log"))

        warm, rest = bodies[: args.warmup], bodies[args.warmup :]
        asyncio.run(_run(base, token, warm, 2))
        share = len(rest) // len(args.clients)
        runs = []
        for i, clients in enumerate(args.clients):
            stats = asyncio.run(_run(base, token, rest[i * share : (i + 1) * share], clients))
            print(json.dumps(stats))
            runs.append(stats)
        at_8 = next((r for r in runs if r["clients"] == 8), None)
        results = {
            "command": command,
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "postgres": pg_version,
            },
            "seed": args.seed,
            "records_loaded": load["records"],
            "golden_records": golden,
            "load_s": round(load_s, 1),
            "workers": args.workers,
            "runs": runs,
            "target": {"p99_ms_at_8_clients": TARGET_P99_MS_8},
            "verdict": {
                "p99_ms_at_8_clients": at_8 and at_8["p99_ms"],
                "ok": bool(at_8 and at_8["p99_ms"] <= TARGET_P99_MS_8),
            },
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        _markdown(results, args.out.with_suffix(".md"))
        print(args.out.with_suffix(".md").read_text())
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        stop_embedded(pg_dir)
        shutil.rmtree(temp, ignore_errors=True)


def _markdown(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        f"Command: `{results['command']}` (seed {results['seed']}, {m['cpus']} CPUs, PostgreSQL "
        f"{m['postgres']} embedded; a shared machine: noisy numbers)",
        "",
        f"{results['records_loaded']:,} records loaded ({results['golden_records']:,} golden records) "
        f"in {results['load_s']} s; `medmatch serve` with {results['workers']} uvicorn workers, "
        "default configuration (offline adjudicator); an asyncio httpx client, one connection per client.",
        "",
        "| clients | lookups | p50 ms | p95 ms | p99 ms | max ms | lookups/s | statuses | decisions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['clients']} | {r['lookups']:,} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r['max_ms']} | {r['lookups_per_s']} | {r['statuses']} | {r['decisions']} |"
        )
    v = results["verdict"]
    lines += [
        "",
        f"Target p99 <= {results['target']['p99_ms_at_8_clients']} ms at 8 clients: "
        f"{v['p99_ms_at_8_clients']} ms, {'met' if v['ok'] else 'MISSED'}.",
    ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
