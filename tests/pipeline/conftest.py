from tests.mpi.conftest import database_url, engine, server_url, uow_factory  # noqa: F401
