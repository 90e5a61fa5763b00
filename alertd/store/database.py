"""The Store: every read and write of alertd state, each write one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import Engine, and_, create_engine, event, func, insert, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from alertd.domain import Alert, Delivery, ScoredItem
from alertd.errors import StoreError
from alertd.store import schema
from alertd.store.migrations import migrate

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
# A digest subscriber's alert waits as HELD until its digest slot, then becomes DIGESTED
# (sent inside a digest email). Rows are never deleted.
HELD, DIGESTED = "held", "digested"


@dataclass(frozen=True)
class FeedState:
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    items_total: int
    last_new_items: int


@dataclass(frozen=True)
class NewAlert:
    """An alert to write with its item, and the single delivery that carries it."""

    alert: Alert
    channel: str
    held: bool = False  # wait for the subscriber's next digest instead of sending now


@dataclass(frozen=True)
class PollOutcome:
    """Everything one poll of one feed changes, written in one transaction."""

    feed: str
    url: str
    status: int | None
    error: str | None
    etag: str | None = None
    last_modified: str | None = None
    items: Sequence[tuple[ScoredItem, Sequence[NewAlert]]] = ()


PayloadBuilder = Callable[[int, str, ScoredItem, Alert, datetime], dict[str, Any]]


def open_store(url: str) -> "Store":
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            _sqlite_pragmas(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        store = Store(engine)
        with engine.begin() as conn:
            migrate(conn)
        return store
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database {parsed.render_as_string(hide_password=True)}: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}")
    except OSError as exc:
        raise StoreError(f"cannot create database directory for {url}: {exc}")


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # IMMEDIATE takes the write lock up front: two writers wait for each other
        # instead of failing when a read transaction tries to become a write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    # feeds -----------------------------------------------------------------

    def feed_state(self, name: str) -> FeedState | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(schema.feeds).where(schema.feeds.c.name == name)).mappings().first()
        return FeedState(**row) if row else None

    def feed_states(self) -> list[FeedState]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(schema.feeds).order_by(schema.feeds.c.name)).mappings().all()
        return [FeedState(**r) for r in rows]

    def known_item_keys(self, feed: str, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        found: set[str] = set()
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                found.update(
                    conn.execute(
                        select(schema.items.c.item_key).where(schema.items.c.feed == feed, schema.items.c.item_key.in_(chunk))
                    ).scalars()
                )
        return found

    def record_poll(self, outcome: PollOutcome, now: datetime, build_payload: PayloadBuilder) -> list[int]:
        """Write feed state, new items, their alerts and outbox rows atomically.

        Returns the ids of the deliveries created. Items already stored (a concurrent
        poll, a restart mid-cycle) are skipped, so nobody is alerted twice.
        """
        delivery_ids: list[int] = []
        with self.engine.begin() as conn:
            self._upsert_feed(conn, outcome, now)
            new_count = 0
            for scored, new_alerts in outcome.items:
                exists = conn.execute(
                    select(schema.items.c.id).where(
                        schema.items.c.feed == scored.feed, schema.items.c.item_key == scored.item.key
                    )
                ).first()
                if exists:
                    continue
                new_count += 1
                item_id = conn.execute(
                    insert(schema.items).values(
                        feed=scored.feed,
                        item_key=scored.item.key,
                        title=scored.item.title,
                        link=scored.item.link,
                        summary=scored.article.text,
                        lang=scored.article.lang,
                        published_at=scored.item.published,
                        seen_at=now,
                        scores=scored.scores.as_dict(),
                        relevant=scored.scores.relevant,
                        model_id=scored.scores.model_id,
                    )
                ).inserted_primary_key[0]
                for new_alert in new_alerts:
                    alert_id = conn.execute(
                        insert(schema.alerts).values(
                            item_id=item_id,
                            subscriber=new_alert.alert.subscriber,
                            matched_labels=list(new_alert.alert.matched_labels),
                            created_at=now,
                        )
                    ).inserted_primary_key[0]
                    message_id = f"msg_{uuid.uuid4().hex}"
                    delivery_ids.append(
                        conn.execute(
                            insert(schema.deliveries).values(
                                alert_id=alert_id,
                                subscriber=new_alert.alert.subscriber,
                                channel=new_alert.channel,
                                message_id=message_id,
                                payload=build_payload(alert_id, message_id, scored, new_alert.alert, now),
                                state=HELD if new_alert.held else PENDING,
                                attempts=0,
                                next_attempt_at=now,
                                created_at=now,
                            )
                        ).inserted_primary_key[0]
                    )
            if new_count:
                conn.execute(
                    update(schema.feeds)
                    .where(schema.feeds.c.name == outcome.feed)
                    .values(items_total=schema.feeds.c.items_total + new_count, last_new_items=new_count)
                )
        return delivery_ids

    def _upsert_feed(self, conn, outcome: PollOutcome, now: datetime) -> None:
        failed = outcome.error is not None
        values: dict[str, Any] = {
            "url": outcome.url,
            "last_polled_at": now,
            "last_status": outcome.status,
            "last_error": outcome.error,
        }
        if not failed:
            values["last_success_at"] = now
            values["consecutive_failures"] = 0
            values["last_new_items"] = 0
            if outcome.status != 304:
                values["etag"] = outcome.etag
                values["last_modified"] = outcome.last_modified
        exists = conn.execute(select(schema.feeds.c.name).where(schema.feeds.c.name == outcome.feed)).first()
        if exists:
            if failed:
                values["consecutive_failures"] = schema.feeds.c.consecutive_failures + 1
            conn.execute(update(schema.feeds).where(schema.feeds.c.name == outcome.feed).values(**values))
        else:
            values.setdefault("consecutive_failures", 1 if failed else 0)
            values.setdefault("last_new_items", 0)
            conn.execute(insert(schema.feeds).values(name=outcome.feed, items_total=0, **values))

    # outbox ----------------------------------------------------------------

    def claim_due_deliveries(self, now: datetime, lease_until: datetime, worker: str, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries to ``worker``; an expired lease is fair game,
        so a crashed sender's claims are retried."""
        d = schema.deliveries
        with self.engine.begin() as conn:
            due = (
                select(d.c.id)
                .where(d.c.state == PENDING, d.c.next_attempt_at <= now, or_(d.c.lease_until.is_(None), d.c.lease_until < now))
                .order_by(d.c.next_attempt_at, d.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(update(d).where(d.c.id.in_(ids)).values(lease_until=lease_until, claimed_by=worker))
            rows = conn.execute(select(d).where(d.c.id.in_(ids)).order_by(d.c.next_attempt_at, d.c.id)).mappings().all()
        return [_delivery(r) for r in rows]

    def mark_delivered(self, delivery_id: int, now: datetime) -> None:
        d = schema.deliveries
        with self.engine.begin() as conn:
            conn.execute(
                update(d)
                .where(d.c.id == delivery_id)
                .values(state=DELIVERED, delivered_at=now, attempts=d.c.attempts + 1, lease_until=None, last_error=None)
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt; ``retry_at`` None means give up (dead letter)."""
        d = schema.deliveries
        values: dict[str, Any] = {"attempts": d.c.attempts + 1, "last_error": error[:2000], "lease_until": None}
        if retry_at is None:
            values["state"] = DEAD
        else:
            values["next_attempt_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id == delivery_id).values(**values))

    def release_leases(self, worker: str) -> int:
        """Give back what ``worker`` claimed but did not attempt, so a restart need not wait for leases to expire."""
        d = schema.deliveries
        with self.engine.begin() as conn:
            result = conn.execute(
                update(d).where(d.c.claimed_by == worker, d.c.state == PENDING, d.c.lease_until.is_not(None)).values(lease_until=None)
            )
        return result.rowcount

    def requeue_dead(self, now: datetime, delivery_id: int | None = None, subscriber: str | None = None) -> int:
        d = schema.deliveries
        condition = d.c.state == DEAD
        if delivery_id is not None:
            condition = and_(condition, d.c.id == delivery_id)
        if subscriber is not None:
            condition = and_(condition, d.c.subscriber == subscriber)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(d).where(condition).values(state=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
            )
        return result.rowcount

    def immediate_count_since(self, subscriber: str, since: datetime) -> int:
        """Alerts created for ``subscriber`` since ``since`` that were not held for a digest."""
        d = schema.deliveries
        with self.engine.begin() as conn:
            return conn.execute(
                select(func.count()).where(d.c.subscriber == subscriber, d.c.created_at >= since, d.c.state.in_((PENDING, DELIVERED, DEAD)))
            ).scalar_one()

    def held_for_digest(self, subscriber: str, slot: datetime, now: datetime) -> list[Delivery]:
        """Held alerts created before ``slot`` whose (re)try time has come, oldest first."""
        d = schema.deliveries
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(d).where(d.c.subscriber == subscriber, d.c.state == HELD, d.c.created_at < slot, d.c.next_attempt_at <= now)
                .order_by(d.c.id)
            ).mappings().all()
        return [_delivery(r) for r in rows]

    def mark_digest_sent(self, ids: Sequence[int], now: datetime) -> None:
        d = schema.deliveries
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id.in_(list(ids))).values(state=DIGESTED, delivered_at=now, attempts=d.c.attempts + 1, last_error=None))

    def mark_digest_failed(self, ids: Sequence[int], error: str, retry_at: datetime | None) -> None:
        """A failed digest: every alert in it is retried together, or dead-lettered together."""
        d = schema.deliveries
        values: dict[str, Any] = {"attempts": d.c.attempts + 1, "last_error": error[:2000]}
        if retry_at is None:
            values["state"] = DEAD
        else:
            values["next_attempt_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id.in_(list(ids))).values(**values))

    def replay(self, subscriber: str, since: datetime, now: datetime) -> int:
        """Queue again what was delivered to ``subscriber`` since ``since``, under the same
        webhook-ids, for a receiver that lost what it had acknowledged."""
        d = schema.deliveries
        with self.engine.begin() as conn:
            result = conn.execute(
                update(d)
                .where(d.c.subscriber == subscriber, d.c.state == DELIVERED, d.c.created_at >= since)
                .values(state=PENDING, attempts=0, next_attempt_at=now, lease_until=None, delivered_at=None)
            )
        return result.rowcount

    def deliveries(self, states: Sequence[str] = (PENDING, DEAD), limit: int = 100) -> list[Delivery]:
        d = schema.deliveries
        with self.engine.begin() as conn:
            rows = conn.execute(select(d).where(d.c.state.in_(states)).order_by(d.c.id.desc()).limit(limit)).mappings().all()
        return [_delivery(r) for r in rows]

    def delivery_counts(self) -> dict[str, int]:
        d = schema.deliveries
        with self.engine.begin() as conn:
            return {state: n for state, n in conn.execute(select(d.c.state, func.count()).group_by(d.c.state))}

    def next_due_at(self) -> datetime | None:
        d = schema.deliveries
        with self.engine.begin() as conn:
            return conn.execute(select(func.min(d.c.next_attempt_at)).where(d.c.state == PENDING)).scalar()

    # analyst feedback -----------------------------------------------------

    def item_id_for_alert(self, alert_id: int) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(select(schema.alerts.c.item_id).where(schema.alerts.c.id == alert_id)).scalar()

    def record_feedback(self, item_id: int, labels: dict[str, int], analyst: str, now: datetime) -> None:
        """Store an analyst's labels for an item; a later judgement replaces an earlier one."""
        f = schema.feedback
        with self.engine.begin() as conn:
            if conn.execute(select(schema.items.c.id).where(schema.items.c.id == item_id)).first() is None:
                raise StoreError(f"no stored item with id {item_id}")
            conn.execute(f.delete().where(f.c.item_id == item_id))
            conn.execute(insert(f).values(item_id=item_id, analyst=analyst, created_at=now, **labels))

    def feedback_rows(self) -> list[dict[str, Any]]:
        """Each judged item with its text, ready to become a training example."""
        f, i = schema.feedback, schema.items
        query = select(f.c.item_id, f.c.sanctions, f.c.arms_transfer, i.c.title, i.c.summary, i.c.lang).join(i, i.c.id == f.c.item_id).order_by(f.c.item_id)
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def oldest_pending_at(self) -> datetime | None:
        d = schema.deliveries
        with self.engine.begin() as conn:
            return conn.execute(select(func.min(d.c.created_at)).where(d.c.state == PENDING)).scalar()

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise StoreError(f"database not reachable: {exc.__class__.__name__}")

    def recent_alerts(self, limit: int = 20) -> list[dict[str, Any]]:
        a, i, d = schema.alerts, schema.items, schema.deliveries
        query = (
            select(
                a.c.id, a.c.subscriber, a.c.created_at, a.c.matched_labels, i.c.title, i.c.link, i.c.feed, i.c.lang,
                i.c.scores, d.c.state, d.c.attempts,
            )
            .join(i, i.c.id == a.c.item_id)
            .join(d, d.c.alert_id == a.c.id)
            .order_by(a.c.id.desc())
            .limit(limit)
        )
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _delivery(row) -> Delivery:
    return Delivery(
        id=row["id"],
        alert_id=row["alert_id"],
        subscriber=row["subscriber"],
        channel=row["channel"],
        message_id=row["message_id"],
        payload=row["payload"],
        attempts=row["attempts"],
        state=row["state"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
    )
