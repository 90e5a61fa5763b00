"""Current table definitions. A new database is created from these and stamped with the
latest migration number; existing databases are brought up to date by migrations.py."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store; use an aware UTC datetime")
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value is not None else None


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
    # version 3: schedule, health and permanent redirects
    Column("configured_url", Text),  # the config's URL when `url` was last set; a config change resets `url`
    Column("next_poll_at", UTCDateTime),
    Column("last_failure", String(40)),  # stable failure kind, see alertd/feeds/fetch.py
    Column("healthy", Boolean, nullable=False, default=True),
    Column("unhealthy_since", UTCDateTime),
    Column("disabled_reason", Text),  # set on 410 Gone: the feed is not polled again
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
    Column("canonical_url", Text),  # version 3
    Column("story_id", Integer),  # version 3: the story this item reports (near-duplicates share one)
    UniqueConstraint("feed", "item_key", name="uq_items_feed_key"),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),  # of the first item seen
    Column("signature", JSON, nullable=False),  # MinHash values of the first item
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("items_count", Integer, nullable=False, default=1),
)

# Locality-sensitive hashing index: a story is a candidate for an article sharing any band.
story_bands = Table(
    "story_bands",
    metadata,
    Column("band", String(40), primary_key=True),
    Column("story_id", Integer, ForeignKey("stories.id"), primary_key=True),
)

article_texts = Table(
    "article_texts",
    metadata,
    Column("url", Text, primary_key=True),  # canonical URL
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("text", Text),  # extracted main text; NULL when extraction failed
    Column("error", Text),
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
    Column("alert_id", Integer, ForeignKey("alerts.id")),  # NULL for notices (version 3)
    Column("subscriber", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("kind", String(16), nullable=False, default="alert"),  # alert | notice (version 3)
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
disabled_endpoints = Table(
    "disabled_endpoints",
    metadata,
    Column("subscriber", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=False),
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
Index("ix_items_story", items.c.story_id)
Index("ix_stories_last_seen", stories.c.last_seen_at)
Index("ix_feeds_next_poll", feeds.c.next_poll_at)
Index("ix_items_canonical_url", items.c.canonical_url)
