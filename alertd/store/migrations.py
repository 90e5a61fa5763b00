"""Schema migrations: an append-only ordered list. Never edit or reorder an entry.

Entry N takes a database from version N-1 to N. A new database is created directly
from schema.py at the latest version, so entries are only for upgrading old ones.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection, insert, inspect, select, text, update

from alertd.errors import StoreError
from alertd.store import schema

Migration = Callable[[Connection], None]

def _v3_ingestion(conn: Connection) -> None:
    """Feed schedule and health, stories (near-duplicate clusters), the article text cache,
    and deliveries that carry operator notices (no alert behind them)."""
    for column in ("configured_url TEXT", "next_poll_at TIMESTAMP", "last_failure VARCHAR(40)",
                   "healthy BOOLEAN NOT NULL DEFAULT TRUE", "unhealthy_since TIMESTAMP", "disabled_reason TEXT"):
        conn.execute(text(f"ALTER TABLE feeds ADD COLUMN {column}"))
    conn.execute(text("UPDATE feeds SET configured_url = url"))
    for column in ("canonical_url TEXT", "story_id INTEGER"):
        conn.execute(text(f"ALTER TABLE items ADD COLUMN {column}"))
    for table in (schema.stories, schema.story_bands, schema.article_texts):
        table.create(conn)  # with their indexes
    for index in schema.items.indexes | schema.feeds.indexes:
        if index.name in ("ix_items_story", "ix_feeds_next_poll"):
            index.create(conn)
    if conn.dialect.name == "sqlite":
        # SQLite cannot drop NOT NULL in place: rebuild the table under the current definition.
        conn.execute(text("DROP INDEX IF EXISTS ix_deliveries_due"))
        conn.execute(text("ALTER TABLE deliveries RENAME TO deliveries_v2"))
        schema.deliveries.create(conn)
        columns = ", ".join(c.name for c in schema.deliveries.columns if c.name != "kind")
        conn.execute(text(f"INSERT INTO deliveries ({columns}, kind) SELECT {columns}, 'alert' FROM deliveries_v2"))
        conn.execute(text("DROP TABLE deliveries_v2"))
    else:
        conn.execute(text("ALTER TABLE deliveries ALTER COLUMN alert_id DROP NOT NULL"))
        conn.execute(text("ALTER TABLE deliveries ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'alert'"))


# Version 1 is the initial schema (created from schema.py). Append upgrades below.
MIGRATIONS: dict[int, Migration] = {
    2: lambda conn: schema.feedback.create(conn),  # analysts' labels on stored items
    3: _v3_ingestion,  # feed schedule and health, stories, article text cache, notices
    4: lambda conn: schema.disabled_endpoints.create(conn),  # webhook endpoints that answered 410 Gone
    5: lambda conn: next(i for i in schema.items.indexes if i.name == "ix_items_canonical_url").create(conn),  # story by link
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
