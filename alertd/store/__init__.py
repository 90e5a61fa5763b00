"""Storage: the only code that knows SQL. SQLite (WAL) by default, PostgreSQL alike."""

from alertd.store.database import Store, open_store

__all__ = ["Store", "open_store"]
