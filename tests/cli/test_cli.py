import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from medmatch.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    result = runner.invoke(
        app, ["generate", "--people", "600", "--seed", "3", "--out", str(folder)]
    )
    assert result.exit_code == 0, result.output
    return folder


def test_match_and_evaluate(dataset, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "match",
            "--demographics",
            str(dataset / "demographics.csv"),
            "--medical",
            str(dataset / "medical.csv"),
            "--out",
            str(out),
            "--train",
            "--save-model",
            str(tmp_path / "kept.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "trained on this input" in result.output
    assert "offline" in result.output  # medical data given: the offline adjudicator weighs in
    pairs = pd.read_csv(out / "pairs.csv")
    assert list(pairs.columns) == [
        "record_id_1",
        "record_id_2",
        "confidence",
        "match_type",
        "stage",
        "decision",
        "explanation",
    ]
    assert set(pairs["decision"]) <= {"auto_match", "review_required", "no_match"}
    assert (pairs["confidence"] >= 0.05).all()
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    demo = pd.read_csv(dataset / "demographics.csv", dtype=str)
    assert sorted(clusters["record_id"]) == sorted(demo["record_id"])
    assert (tmp_path / "kept.json").is_file()

    result = runner.invoke(
        app, ["evaluate", "--truth", str(dataset / "truth.csv"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "B-cubed" in result.output and (out / "evaluation.json").is_file()

    # a saved model is used as it is
    again = runner.invoke(
        app,
        [
            "match",
            "--demographics",
            str(dataset / "demographics.csv"),
            "--out",
            str(tmp_path / "o2"),
            "--model",
            str(tmp_path / "kept.json"),
        ],
    )
    assert again.exit_code == 0 and "loaded from" in again.output


def test_small_input_uses_the_shipped_model(tmp_path):
    table = pd.DataFrame(
        {
            "record_id": ["1", "2"],
            "source_system": ["A", "B"],
            "name_first": ["Ann", "Ann"],
            "name_last": ["Lee", "Lee"],
            "date_of_birth": ["1980-01-02", "1980-02-31"],
            "hobby": ["x", "y"],
        }
    )
    table.to_parquet(tmp_path / "d.parquet")
    result = runner.invoke(
        app, ["match", "--demographics", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "shipped default model" in result.output
    assert "ignored unknown column(s): hobby" in result.output
    assert "record 2: date_of_birth invalid value dropped" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("record_id,name_last\n1,Lee\n", "missing column(s) source_system"),
        ("record_id,source_system,city\n1,A,Boston\n", "needs a name column"),
        ("record_id,source_system,name_last\n1,A,Lee\n1,A,Li\n", "record_id is not unique"),
        ("record_id,source_system,name_last\n,A,Lee\n", "record_id is empty"),
        # a row with a field too many: refused, not read with every value one column over
        ("record_id,source_system,name_last\n1,A,Lee,extra\n", "cannot read"),
        # a short row is read (its missing fields empty), but not beside a long one
        ("record_id,source_system,name_last\n1,A\n2,B,Lee,extra\n", "more fields than"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, content, message):
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(
        app, ["match", "--demographics", str(path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_unreadable_parquet_and_bad_model(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    result = runner.invoke(app, ["match", "--demographics", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and "cannot read" in result.output
    (tmp_path / "d.csv").write_text("record_id,source_system,name_last\n1,A,Lee\n")
    result = runner.invoke(
        app,
        [
            "match",
            "--demographics",
            str(tmp_path / "d.csv"),
            "--model",
            str(tmp_path / "nope.json"),
        ],
    )
    assert result.exit_code == 2 and "model file not found" in result.output


def test_evaluate_needs_truth_columns(tmp_path, dataset):
    (tmp_path / "t.csv").write_text("record_id\n1\n")
    out = tmp_path / "o"
    out.mkdir()
    (out / "pairs.csv").write_text("record_id_1,record_id_2,confidence\n")
    (out / "clusters.csv").write_text("record_id,cluster_id\n")
    result = runner.invoke(app, ["evaluate", "--truth", str(tmp_path / "t.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "person_id" in result.output
    result = runner.invoke(
        app, ["evaluate", "--truth", str(tmp_path / "none.csv"), "--out", str(out)]
    )
    assert result.exit_code == 2


def test_generate_parquet_and_bad_format(tmp_path):
    ok = runner.invoke(
        app, ["generate", "--people", "20", "--out", str(tmp_path), "--format", "parquet"]
    )
    assert ok.exit_code == 0 and (tmp_path / "demographics.parquet").is_file()
    bad = runner.invoke(app, ["generate", "--format", "xlsx"])
    assert bad.exit_code == 2
    bad = runner.invoke(app, ["match", "--demographics", "x.csv", "--adjudicator", "oracle"])
    assert bad.exit_code == 2 and "--adjudicator" in bad.output


def test_run_matcher_script(dataset, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/run_matcher.py"),
            "--demographics",
            str(dataset / "demographics.csv"),
            "--out",
            str(tmp_path / "o"),
            "--no-train",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "clusters.csv").is_file()
    missing = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/run_matcher.py"),
            "--demographics",
            str(tmp_path / "none.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "file not found" in missing.stderr
