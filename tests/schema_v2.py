"""The table definitions of schema version 2, frozen: tests build genuine old databases from
them to check that upgrades work in place. Never edit."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from alertd.store.schema import UTCDateTime  # converts values; not part of the frozen table shape

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

feeds = Table(
    "feeds",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_polled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("items_total", Integer, nullable=False, default=0),
    Column("last_new_items", Integer, nullable=False, default=0),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed", String(200), nullable=False),
    Column("item_key", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("lang", String(16)),
    Column("published_at", UTCDateTime),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("relevant", Boolean, nullable=False),
    Column("model_id", String(100), nullable=False),
    UniqueConstraint("feed", "item_key", name="uq_items_feed_key"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("subscriber", String(200), nullable=False),
    Column("matched_labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("item_id", "subscriber", name="uq_alerts_item_subscriber"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("subscriber", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("claimed_by", String(100)),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
)
feedback = Table(
    "feedback",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id"), primary_key=True),
    Column("sanctions", Integer, nullable=False),
    Column("arms_transfer", Integer, nullable=False),
    Column("analyst", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

Index("ix_deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)
Index("ix_alerts_created", alerts.c.created_at)
