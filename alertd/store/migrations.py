"""Schema migrations: an append-only ordered list. Never edit or reorder an entry.

Entry N takes a database from version N-1 to N. A new database is created directly
from schema.py at the latest version, so entries are only for upgrading old ones.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection, insert, inspect, select, update

from alertd.errors import StoreError
from alertd.store import schema

Migration = Callable[[Connection], None]

# Version 1 is the initial schema (created from schema.py). Append upgrades below.
MIGRATIONS: dict[int, Migration] = {
    2: lambda conn: schema.feedback.create(conn),  # analysts' labels on stored items
}
LATEST = max([1, *MIGRATIONS])


def migrate(conn: Connection) -> int:
    """Bring the schema to LATEST inside the caller's transaction; return the version."""
    inspector_tables = inspect(conn).get_table_names()
    if "schema_version" not in inspector_tables:
        schema.metadata.create_all(conn)
        conn.execute(insert(schema.schema_version).values(version=LATEST))
        return LATEST
    current = conn.execute(select(schema.schema_version.c.version)).scalar_one()
    if current > LATEST:
        raise StoreError(f"database schema is version {current}, newer than this alertd understands ({LATEST}); upgrade alertd")
    for version in range(current + 1, LATEST + 1):
        MIGRATIONS[version](conn)
        conn.execute(update(schema.schema_version).values(version=version))
    return LATEST
