"""The Master Patient Index on PostgreSQL: schema, migrations, repositories, unit of work
and the services (matching lookups, golden records, review)."""
