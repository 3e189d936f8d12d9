from medmatch_pipeline.definitions import make_definitions
from medmatch_pipeline.resources import Adjudicators, Landing, ModelStore, MPIDatabase
from tests.mpi.conftest import database_url, engine, server_url, uow_factory  # noqa: F401


def pipeline_definitions(
    url, landing, models_dir, trained, *, retrain=False, adjudicators="offline"
):
    """The code location over the test database and a landing folder, with a model store
    whose promoted model is the session's trained one."""
    models = ModelStore(directory=str(models_dir), retrain=retrain)
    models.save(trained, promote=True)
    return make_definitions(
        database=MPIDatabase(url=url),
        adjudicators=Adjudicators(kind=adjudicators),
        models=models,
        landing=Landing(directory=str(landing)),
    )


def land_sample(tmp_path, synthetic, records, *, medical=True):
    """A landing folder with the first `records` generated records (their medical data too
    with `medical`); returns the folder and the records landed."""
    folder = tmp_path / "landing"
    folder.mkdir()
    demo = synthetic.demographics.head(records)
    demo.to_csv(folder / "demographics.csv", index=False)
    if medical:
        rows = synthetic.medical[synthetic.medical["record_id"].isin(demo["record_id"])]
        rows.to_csv(folder / "medical.csv", index=False)
    return folder, demo


def truth_by_identity(data, records=None):
    """person_id by source identity ('SYSTEM/external_id'), as the MPI keys its records."""
    demo = data.demographics if records is None else records
    person = dict(zip(data.truth["record_id"], data.truth["person_id"], strict=True))
    return {
        f"{s}/{e}": person[r]
        for r, s, e in zip(
            demo["record_id"], demo["source_system"], demo["external_id"], strict=True
        )
    }
