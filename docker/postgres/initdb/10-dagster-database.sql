-- Runs once, when the postgres volume is first initialised: Dagster's runs, event logs and
-- schedules live in a database of their own beside the MPI's (DAGSTER_PG_URL points here).
CREATE DATABASE dagster;
