"""The `medmatch` command: generate data, match files, evaluate results, run the database."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medmatch.errors import InputFileError, MedMatchError
from medmatch.mpi.commands import db_app, token_app
from medmatch_api.commands import serve
from medmatch_pipeline.commands import pipeline_app

app = typer.Typer(help="MedMatch: an open-source Master Patient Index.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(token_app, name="token")
app.command()(serve)
console = Console(stderr=True)
out = Console()

EXIT_BAD_INPUT = 2


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def generate(
    people: Annotated[int, typer.Option(min=1, help="people to generate (records are ~2x)")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same data")] = 42,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("synthetic"),
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
) -> None:
    """Generate a synthetic population with ground truth (demographics, medical, truth)."""
    from medmatch.data.synthetic import generate as make

    if fmt not in ("csv", "parquet"):
        raise _fail("--format must be csv or parquet")
    started = time.perf_counter()
    data = make(people, seed=seed)
    paths = data.write(out_dir, fmt)
    out.print(
        f"Generated {len(data.demographics):,} records of {data.truth['person_id'].nunique():,} "
        f"people in {time.perf_counter() - started:.1f}s -> {paths['demographics'].parent}"
    )


@app.command()
def match(
    demographics: Annotated[Path, typer.Option(help="CSV or Parquet, one row per record")],
    medical: Annotated[Path | None, typer.Option(help="record_id, conditions, medications")] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="folder for pairs.csv, clusters.csv")
    ] = Path("medmatch-out"),
    model: Annotated[Path | None, typer.Option(help="use this saved model (no training)")] = None,
    save_model: Annotated[Path | None, typer.Option(help="save the trained model here")] = None,
    train: Annotated[
        bool | None,
        typer.Option("--train/--no-train", help="train on the input (default: when large enough)"),
    ] = None,
    floor: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="lowest confidence written to pairs.csv")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed for training's random sampling")] = 42,
    adjudicator: Annotated[
        str | None,
        typer.Option(
            help="offline, ollama (OLLAMA_BASE_URL) or none; default: offline with --medical"
        ),
    ] = None,
) -> None:
    """Find duplicate patients in a file: pairs.csv, clusters.csv and a summary."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("splink").setLevel(logging.ERROR)
    from medmatch import io
    from medmatch.config import get_settings
    from medmatch.data.features import table_features
    from medmatch.matching import MatchModel, PatientMatcher
    from medmatch.matching.training import train_model

    settings = get_settings()
    from medmatch.matching import adjudicators

    kind = adjudicator or ("offline" if medical is not None else "none")
    try:
        judges = adjudicators.from_settings(kind, settings)
    except ValueError as exc:
        raise _fail(f"--adjudicator: {exc}") from None
    thresholds = settings.thresholds
    if floor is not None:
        thresholds = thresholds.model_copy(update={"pair_floor": floor})
    started = time.perf_counter()
    try:
        table, ignored = io.read_demographics(demographics)
        med_table = None
        if medical is not None:
            med_table, ignored_med = io.read_medical(medical)
            ignored += ignored_med
        chosen = MatchModel.load(model) if model is not None else None
    except (InputFileError, MedMatchError) as exc:
        raise _fail(str(exc)) from None
    if ignored:
        console.print(f"[yellow]warning:[/yellow] ignored unknown column(s): {', '.join(ignored)}")

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("normalise", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, description=stage, completed=fraction)

        t = time.perf_counter()
        feats = table_features(table, med_table, phone_region=settings.default_phone_region)
        timings = {"normalise_s": time.perf_counter() - t}
        n_records = len(table)
        del table, med_table  # the normalised features are all that is needed from here
        for w in feats.warnings[:10]:
            console.print(f"[yellow]warning:[/yellow] record {w.record_id}: {w.field} {w.reason}")
        if len(feats.warnings) > 10:
            console.print(
                f"[yellow]warning:[/yellow] {sum(feats.warning_counts.values())} invalid "
                f"values dropped in all ({feats.warning_counts})"
            )
        should_train = (
            train
            if train is not None
            else (chosen is None and n_records >= settings.min_records_to_train)
        )
        if chosen is None and should_train:
            progress("train", 0.1)
            t = time.perf_counter()
            chosen = train_model(feats.frame, seed=seed)
            timings["train_s"] = time.perf_counter() - t
            origin = f"trained on this input ({n_records:,} records)"
        elif chosen is None:
            chosen = MatchModel.default()
            origin = "shipped default model"
        else:
            origin = f"loaded from {model}"
        matcher = PatientMatcher(chosen, thresholds=thresholds, adjudicator=judges)
        result = matcher.dedupe_features(feats.frame, progress=progress, timings=timings)

    out_dir.mkdir(parents=True, exist_ok=True)
    result.pairs.drop(columns=["match_weight", "rule"]).to_csv(out_dir / "pairs.csv", index=False)
    result.clusters.to_csv(out_dir / "clusters.csv", index=False)
    chosen.save(out_dir / "model.json")
    if save_model is not None:
        chosen.save(save_model)
    summary = (
        result.stats
        | {"adjudicator": kind}
        | {
            "invalid_values": sum(feats.warning_counts.values()),
            "wall_time_s": round(time.perf_counter() - started, 2),
        }
    )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    _print_summary(summary, origin, out_dir)


def _print_summary(summary: dict, origin: str, out_dir: Path) -> None:
    table = Table(title="MedMatch summary", show_header=False)
    for key in (
        "records",
        "pairs_scored",
        "auto_match",
        "review_required",
        "no_match",
        "hard_negatives",
        "clusters",
        "invalid_values",
        "wall_time_s",
    ):
        table.add_row(
            key.replace("_", " "),
            f"{summary[key]:,}" if isinstance(summary[key], int) else str(summary[key]),
        )
    table.add_row("model", f"{summary['model_version']} ({origin})")
    table.add_row("adjudicator", str(summary.get("adjudicator", "none")))
    # how many pairs reached each adjudicator, and what it answered
    for key, value in summary.items():
        if key.startswith("ai_") and value:
            table.add_row(key.removeprefix("ai_").replace("_", " "), f"{value:,}")
    table.add_row("output", str(out_dir))
    out.print(table)


@app.command()
def ingest(
    demographics: Annotated[
        Path, typer.Option(help="CSV or Parquet: record_id, source_system, ...")
    ],
    medical: Annotated[Path | None, typer.Option(help="record_id, conditions, medications")] = None,
    adjudicator: Annotated[
        str | None, typer.Option(help="offline, ollama or none; default: ollama if configured")
    ] = None,
) -> None:
    """Feed a file into the MPI (PostgreSQL) record by record, through the real-time lookup."""
    from rich.progress import MofNCompleteColumn

    from medmatch import io
    from medmatch.config import get_settings
    from medmatch.mpi.bootstrap import bootstrap
    from medmatch.mpi.ingest import ingest as run

    settings = get_settings()
    try:
        table, _ = io.read_demographics(demographics)
        med_table = io.read_medical(medical)[0] if medical is not None else None
        mpi = bootstrap(settings, adjudicator=adjudicator)
    except (InputFileError, ValueError, MedMatchError) as exc:
        raise _fail(str(exc)) from None
    try:
        with Progress(
            TextColumn("[bold]lookup"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("lookup", total=len(table))
            summary = run(
                mpi.matching,
                table,
                med_table,
                phone_region=settings.default_phone_region,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    finally:
        mpi.engine.dispose()
    result = Table(title="MedMatch ingest", show_header=False)
    for key, value in summary.model_dump().items():
        result.add_row(key.replace("_", " "), str(value))
    out.print(result)


@app.command()
def evaluate(
    truth: Annotated[Path, typer.Option(help="record_id, person_id (ground truth)")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder holding pairs.csv, clusters.csv")],
) -> None:
    """Compare a match run with ground truth: pairwise and B-cubed metrics, hard cases."""
    from medmatch import io
    from medmatch.evaluation import evaluate as run

    try:
        truth_table = io.read_table(truth)
        pairs = io.read_table(out_dir / "pairs.csv")
        clusters = io.read_table(out_dir / "clusters.csv")
    except InputFileError as exc:
        raise _fail(str(exc)) from None
    missing = [c for c in ("record_id", "person_id") if c not in truth_table.columns]
    if missing:
        raise _fail(f"{truth.name}: missing column(s) {', '.join(missing)}")
    report = run(pairs, clusters, truth_table)
    (out_dir / "evaluation.json").write_text(json.dumps(report.as_dict(), indent=1))
    table = Table(title="Evaluation against ground truth")
    for col in ("metric", "precision", "recall", "F1"):
        table.add_column(col)
    c, b = report.cluster, report.b_cubed
    table.add_row(
        "pairwise (clusters)", f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}"
    )
    table.add_row("B-cubed", f"{b['precision']:.4f}", f"{b['recall']:.4f}", f"{b['f1']:.4f}")
    for row in report.sweep:
        table.add_row(
            f"pairs >= {row['threshold']}",
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
        )
    out.print(table)
    for name, counts in report.hard_cases.items():
        out.print(
            f"{name}: {counts['wrongly_merged']} of {counts['families']} families wrongly merged"
        )
    out.print(f"Report written to {out_dir / 'evaluation.json'}")


if __name__ == "__main__":  # pragma: no cover
    app()
