from tests.mpi.conftest import database_url, engine, server_url, uow_factory  # noqa: F401


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
