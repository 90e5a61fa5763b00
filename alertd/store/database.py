"""The Store: every read and write of alertd state, each write one transaction."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Engine, String, and_, any_, bindparam, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from alertd.domain import Alert, Delivery, ScoredItem
from alertd.errors import StoreError
from alertd.feeds.parse import canonical_url
from alertd.stories import StoryMatcher, bands
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
    configured_url: str | None = None
    next_poll_at: datetime | None = None
    last_failure: str | None = None
    healthy: bool = True
    unhealthy_since: datetime | None = None
    disabled_reason: str | None = None


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
    configured_url: str | None = None  # the config's URL; `url` may differ after a permanent redirect
    failure: str | None = None  # stable failure kind
    next_poll_at: datetime | None = None
    healthy: bool = True
    disabled_reason: str | None = None
    fingerprints: Mapping[str, Sequence[int]] = field(default_factory=dict)  # item key -> MinHash signature
    article_texts: Sequence["ArticleText"] = ()  # page extractions to cache, successful or not
    notices: Sequence["NewNotice"] = ()


@dataclass(frozen=True)
class ArticleText:
    url: str  # canonical
    text: str | None
    error: str | None = None


@dataclass(frozen=True)
class NewNotice:
    """An operator notice (feed broken or recovered) to put in the outbox."""

    subscriber: str
    channel: str
    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class RecordResult:
    delivery_ids: list[int] = field(default_factory=list)
    new_items: int = 0
    alerts_merged: int = 0  # alerts not created because the subscriber already had this story
    items_joined_story: int = 0  # items that joined an existing story


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
        # A write transaction takes the write lock up front (IMMEDIATE): two writers wait for
        # each other instead of failing when a read tries to become a write. Reads stay
        # deferred, so under WAL they never wait for a writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


_READ_ONLY = "alertd_read_only"


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        # SQLite has one writer at a time. Threads of this process queue on a lock, which
        # wakes the next one the moment a write commits, rather than on SQLite's busy
        # handler, which sleeps in growing steps and wastes most of a busy poll cycle.
        self._write_lock: AbstractContextManager = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # feeds -----------------------------------------------------------------

    def feed_state(self, name: str) -> FeedState | None:
        with self._reading() as conn:
            row = conn.execute(select(schema.feeds).where(schema.feeds.c.name == name)).mappings().first()
        return FeedState(**row) if row else None

    def feed_states(self, names: Sequence[str] | None = None) -> dict[str, FeedState]:
        """Stored state of the named feeds (of all, without ``names``), by name."""
        f = schema.feeds
        with self._reading() as conn:
            if names is None:
                rows = conn.execute(select(f).order_by(f.c.name)).mappings().all()
            else:
                rows = conn.execute(select(f).where(_among(conn.dialect.name, f.c.name, "names")), {"names": _array(conn.dialect.name, names)}).mappings().all()
        return {r["name"]: FeedState(**r) for r in rows}

    def record_quiet_polls(self, polls: Sequence[tuple[str, datetime, datetime | None]]) -> None:
        """(feed, polled at, next poll at) of not-modified polls that changed nothing else."""
        f = schema.feeds
        with self._writing() as conn:
            conn.execute(
                update(f).where(f.c.name == bindparam("b_name")).values(
                    last_polled_at=bindparam("b_at"), last_success_at=bindparam("b_at"), last_status=304,
                    next_poll_at=bindparam("b_next"), last_new_items=0,
                ),
                [{"b_name": name, "b_at": at, "b_next": next_at} for name, at, next_at in polls],
            )

    def known_item_keys(self, feed: str, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        with self._reading() as conn:
            return _stored_keys(conn, feed, keys)

    def record_poll(
        self, outcome: PollOutcome, now: datetime, build_payload: PayloadBuilder, stories: StoryMatcher | None = None
    ) -> RecordResult:
        """Write feed state, new items, their stories, alerts, outbox rows, cached article
        texts and operator notices atomically.

        Items already stored (a concurrent poll, a restart mid-cycle) are skipped, so nobody
        is alerted twice; with ``stories``, an item that joins a story a subscriber was
        already alerted about creates no second alert for that subscriber.
        """
        delivery_ids: list[int] = []
        merged = 0
        with self._writing() as conn:
            fresh = self._not_stored(conn, outcome)
            self._upsert_feed(conn, outcome, now, len(fresh))
            for text in outcome.article_texts:
                conn.execute(delete(schema.article_texts).where(schema.article_texts.c.url == text.url))
                conn.execute(insert(schema.article_texts).values(url=text.url, fetched_at=now, text=text.text, error=text.error))
            story_ids: dict[str, int] = {}
            joined = 0
            if stories is not None and fresh and outcome.fingerprints:
                if conn.dialect.name == "postgresql":
                    # story assignment reads then writes: serialise it between concurrent polls
                    conn.exec_driver_sql("LOCK TABLE stories IN SHARE ROW EXCLUSIVE MODE")
                story_ids, joined = self._assign_stories(conn, fresh, outcome, stories, now)
            item_ids = self._insert_items(conn, fresh, story_ids, now)
            for (scored, new_alerts), item_id in zip(fresh, item_ids):
                story_id = story_ids.get(scored.item.key)
                for new_alert in new_alerts:
                    if story_id is not None and self._story_alerted(conn, story_id, new_alert.alert.subscriber):
                        merged += 1
                        continue
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
                        self._insert_delivery(
                            conn, now, alert_id=alert_id, subscriber=new_alert.alert.subscriber, channel=new_alert.channel,
                            message_id=message_id, payload=build_payload(alert_id, message_id, scored, new_alert.alert, now),
                            state=HELD if new_alert.held else PENDING,
                        )
                    )
            for notice in outcome.notices:
                delivery_ids.append(
                    self._insert_delivery(conn, now, alert_id=None, subscriber=notice.subscriber, channel=notice.channel,
                                          message_id=notice.message_id, payload=notice.payload, kind="notice")
                )
        return RecordResult(delivery_ids, len(fresh), merged, joined)

    @staticmethod
    def _not_stored(conn, outcome: PollOutcome) -> list[tuple[ScoredItem, Sequence[NewAlert]]]:
        """The poll's items not yet stored (a concurrent poll or a restart mid-cycle may have
        stored some), each key once, in feed order."""
        keys = list(dict.fromkeys(scored.item.key for scored, _ in outcome.items))
        stored = _stored_keys(conn, outcome.feed, keys)
        fresh: dict[str, tuple[ScoredItem, Sequence[NewAlert]]] = {}
        for scored, alerts in outcome.items:
            if scored.item.key not in stored:
                fresh.setdefault(scored.item.key, (scored, alerts))
        return list(fresh.values())

    @staticmethod
    def _insert_items(conn, fresh: Sequence[tuple[ScoredItem, Sequence[NewAlert]]], story_ids: Mapping[str, int],
                      now: datetime) -> list[int]:
        """Insert the items in one statement; their ids in the same order."""
        if not fresh:
            return []
        rows = [
            dict(
                feed=scored.feed, item_key=scored.item.key, title=scored.item.title, link=scored.item.link,
                canonical_url=canonical_url(scored.item.link) if scored.item.link else None, summary=scored.article.text,
                lang=scored.article.lang, published_at=scored.item.published, seen_at=now, scores=scored.scores.as_dict(),
                relevant=scored.scores.relevant, model_id=scored.scores.model_id, story_id=story_ids.get(scored.item.key),
            )
            for scored, _ in fresh
        ]
        return list(conn.execute(_statements(conn.dialect.name).insert_items, rows).scalars())

    @classmethod
    def _assign_stories(cls, conn, fresh: Sequence[tuple[ScoredItem, Sequence[NewAlert]]], outcome: PollOutcome,
                        stories: StoryMatcher, now: datetime) -> tuple[dict[str, int], int]:
        """Item key → story id for the new items, joining recent similar stories or starting new
        ones, and how many items joined a story that already existed.

        An article another feed already carried under the same canonical link is the same
        story whatever its headline says (aggregators and translated headlines share no
        shingles); otherwise the MinHash index decides, among the recent stories sharing a
        band and the stories this poll starts. Reads and writes are one statement each for
        the whole poll, not per item."""
        todo = [(scored, tuple(fp)) for scored, _ in fresh if (fp := outcome.fingerprints.get(scored.item.key)) is not None]
        by_link = cls._stories_by_link(conn, [scored for scored, _ in todo], stories, now)
        item_bands = {scored.item.key: bands(fp) for scored, fp in todo}
        all_bands = list({key for keys in item_bands.values() for key in keys})
        known: dict[int, tuple[int, ...]] = {}  # recent story id -> signature
        in_band: dict[str, list[int]] = {}
        rows = conn.execute(
            _statements(conn.dialect.name).band_stories, {"bands": _array(conn.dialect.name, all_bands), "since": stories.window_start(now)}
        ) if all_bands else ()
        for band, story_id, sig in rows:
            known[story_id] = tuple(sig)
            in_band.setdefault(band, []).append(story_id)
        started: list[tuple[ScoredItem, tuple[int, ...]]] = []  # new stories, by position; referred to as -(position + 1)
        chosen: dict[str, int] = {}
        joined_existing: dict[int, int] = {}
        joined = 0
        for scored, fp in todo:
            link = canonical_url(scored.item.link) if scored.item.link else None
            story = by_link.get(link) if link else None
            if story is None:
                keys = item_bands[scored.item.key]
                existing = sorted({sid for key in keys for sid in in_band.get(key, ())})
                candidates = [(sid, known[sid]) for sid in existing] + [
                    (-(n + 1), sig) for n, (other, sig) in enumerate(started) if set(item_bands[other.item.key]) & set(keys)
                ]
                story = stories.choose(fp, candidates)
            if story is None:
                started.append((scored, fp))
                story = -len(started)
            else:
                joined += 1
                if story > 0:
                    joined_existing[story] = joined_existing.get(story, 0) + 1
            chosen[scored.item.key] = story
            if link and link not in by_link:
                by_link[link] = story
        new_ids: list[int] = []
        if started:
            members = Counter(chosen.values())
            new_ids = list(conn.execute(
                _statements(conn.dialect.name).insert_stories,
                [dict(title=scored.item.title[:1000], signature=list(fp), first_seen_at=now, last_seen_at=now,
                      items_count=members[-(n + 1)]) for n, (scored, fp) in enumerate(started)],
            ).scalars())
            conn.execute(_statements(conn.dialect.name).insert_bands, [{"band": key, "story_id": story_id} for (scored, _), story_id in zip(started, new_ids)
                                     for key in dict.fromkeys(item_bands[scored.item.key])])
        if joined_existing:
            conn.execute(_statements(conn.dialect.name).join_stories,
                         [{"b_id": story_id, "b_n": n, "b_now": now} for story_id, n in joined_existing.items()])
        return {key: story if story > 0 else new_ids[-story - 1] for key, story in chosen.items()}, joined

    @staticmethod
    def _insert_delivery(conn, now: datetime, *, kind: str = "alert", state: str = PENDING, **values) -> int:
        return conn.execute(
            insert(schema.deliveries).values(kind=kind, state=state, attempts=0, next_attempt_at=now, created_at=now, **values)
        ).inserted_primary_key[0]

    @staticmethod
    def _stories_by_link(conn, items: Sequence[ScoredItem], stories: StoryMatcher, now: datetime) -> dict[str, int]:
        """Canonical link → the story of the earliest recent item under it, for these items."""
        links = list({canonical_url(scored.item.link) for scored in items if scored.item.link})
        found: dict[str, int] = {}
        if not links:
            return found
        rows = conn.execute(
            _statements(conn.dialect.name).link_stories, {"links": _array(conn.dialect.name, links), "since": stories.window_start(now)}
        )
        for link, story_id in rows:
            found.setdefault(link, story_id)
        return found

    @staticmethod
    def _story_alerted(conn, story_id: int, subscriber: str) -> bool:
        a, i = schema.alerts, schema.items
        return conn.execute(
            select(a.c.id).join(i, i.c.id == a.c.item_id).where(i.c.story_id == story_id, a.c.subscriber == subscriber).limit(1)
        ).first() is not None

    def _upsert_feed(self, conn, outcome: PollOutcome, now: datetime, new_items: int) -> None:
        failed = outcome.error is not None
        values: dict[str, Any] = {
            "url": outcome.url,
            "configured_url": outcome.configured_url or outcome.url,
            "last_polled_at": now,
            "last_status": outcome.status,
            "last_error": outcome.error,
            "last_failure": outcome.failure,
            "next_poll_at": outcome.next_poll_at,
            "healthy": outcome.healthy,
            "disabled_reason": outcome.disabled_reason,
        }
        if not failed:
            values["last_success_at"] = now
            values["consecutive_failures"] = 0
            values["last_new_items"] = 0
            if outcome.status != 304:
                values["etag"] = outcome.etag
                values["last_modified"] = outcome.last_modified
        if outcome.healthy:
            values["unhealthy_since"] = None
        if new_items:
            values["last_new_items"] = new_items
        existing = conn.execute(_statements(conn.dialect.name).feed_health, {"feed": outcome.feed}).first()
        if existing:
            if not outcome.healthy and existing.healthy:
                values["unhealthy_since"] = now
            increments = {}
            if failed:
                increments["consecutive_failures"] = 1
            if new_items:
                increments["items_total"] = new_items
            conn.execute(_feed_update(tuple(values), tuple(increments)),
                         {"v_name": outcome.feed, **{f"v_{k}": v for k, v in {**values, **increments}.items()}})
        else:
            values.setdefault("consecutive_failures", 1 if failed else 0)
            values.setdefault("last_new_items", 0)
            if not outcome.healthy:
                values["unhealthy_since"] = now
            conn.execute(insert(schema.feeds).values(name=outcome.feed, items_total=new_items, **values))

    def cached_article_texts(self, urls: Iterable[str], since: datetime) -> dict[str, ArticleText]:
        """Extractions (or failures) of these canonical URLs made after ``since``."""
        urls = list(dict.fromkeys(urls))
        found: dict[str, ArticleText] = {}
        t = schema.article_texts
        with self._reading() as conn:
            if urls:
                rows = conn.execute(select(t).where(_among(conn.dialect.name, t.c.url, "urls"), t.c.fetched_at >= since),
                                    {"urls": _array(conn.dialect.name, urls)}).mappings()
                found.update({r["url"]: ArticleText(r["url"], r["text"], r["error"]) for r in rows})
        return found

    def prune_story_index(self, before: datetime) -> int:
        """Drop the LSH bands of stories last reported before ``before``: they can no longer be joined."""
        s, b = schema.stories, schema.story_bands
        with self._writing() as conn:
            return conn.execute(delete(b).where(b.c.story_id.in_(select(s.c.id).where(s.c.last_seen_at < before)))).rowcount

    # outbox ----------------------------------------------------------------

    def claim_due_deliveries(self, now: datetime, lease_until: datetime, worker: str, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries to ``worker``; an expired lease is fair game,
        so a crashed sender's claims are retried. Subscribers whose endpoint is disabled
        are skipped: their deliveries wait, pending, until it is enabled again."""
        d = schema.deliveries
        with self._writing() as conn:
            due = (
                select(d.c.id)
                .where(d.c.state == PENDING, d.c.next_attempt_at <= now, or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                       d.c.subscriber.not_in(select(schema.disabled_endpoints.c.subscriber)))
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

    def release_lease(self, delivery_id: int) -> None:
        d = schema.deliveries
        with self._writing() as conn:
            conn.execute(update(d).where(d.c.id == delivery_id).values(lease_until=None))

    def disable_endpoint(self, subscriber: str, reason: str, now: datetime) -> None:
        e = schema.disabled_endpoints
        with self._writing() as conn:
            conn.execute(e.delete().where(e.c.subscriber == subscriber))
            conn.execute(insert(e).values(subscriber=subscriber, reason=reason[:2000], disabled_at=now))

    def enable_endpoint(self, subscriber: str) -> bool:
        e = schema.disabled_endpoints
        with self._writing() as conn:
            return conn.execute(e.delete().where(e.c.subscriber == subscriber)).rowcount > 0

    def disabled_endpoints(self) -> dict[str, str]:
        e = schema.disabled_endpoints
        with self._reading() as conn:
            return {row.subscriber: row.reason for row in conn.execute(select(e))}

    def mark_delivered(self, delivery_id: int, now: datetime) -> None:
        d = schema.deliveries
        with self._writing() as conn:
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
        with self._writing() as conn:
            conn.execute(update(d).where(d.c.id == delivery_id).values(**values))

    def release_leases(self, worker: str) -> int:
        """Give back what ``worker`` claimed but did not attempt, so a restart need not wait for leases to expire."""
        d = schema.deliveries
        with self._writing() as conn:
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
        with self._writing() as conn:
            result = conn.execute(
                update(d).where(condition).values(state=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
            )
        return result.rowcount

    def immediate_count_since(self, subscriber: str, since: datetime) -> int:
        """Alerts created for ``subscriber`` since ``since`` that were not held for a digest."""
        d = schema.deliveries
        with self._reading() as conn:
            return conn.execute(
                select(func.count()).where(d.c.subscriber == subscriber, d.c.created_at >= since, d.c.state.in_((PENDING, DELIVERED, DEAD)))
            ).scalar_one()

    def held_for_digest(self, subscriber: str, slot: datetime, now: datetime) -> list[Delivery]:
        """Held alerts created before ``slot`` whose (re)try time has come, oldest first."""
        d = schema.deliveries
        with self._reading() as conn:
            rows = conn.execute(
                select(d).where(d.c.subscriber == subscriber, d.c.state == HELD, d.c.created_at < slot, d.c.next_attempt_at <= now)
                .order_by(d.c.id)
            ).mappings().all()
        return [_delivery(r) for r in rows]

    def mark_digest_sent(self, ids: Sequence[int], now: datetime) -> None:
        d = schema.deliveries
        with self._writing() as conn:
            conn.execute(update(d).where(d.c.id.in_(list(ids))).values(state=DIGESTED, delivered_at=now, attempts=d.c.attempts + 1, last_error=None))

    def mark_digest_failed(self, ids: Sequence[int], error: str, retry_at: datetime | None) -> None:
        """A failed digest: every alert in it is retried together, or dead-lettered together."""
        d = schema.deliveries
        values: dict[str, Any] = {"attempts": d.c.attempts + 1, "last_error": error[:2000]}
        if retry_at is None:
            values["state"] = DEAD
        else:
            values["next_attempt_at"] = retry_at
        with self._writing() as conn:
            conn.execute(update(d).where(d.c.id.in_(list(ids))).values(**values))

    def replay(self, subscriber: str, since: datetime, now: datetime) -> int:
        """Queue again what was delivered to ``subscriber`` since ``since``, under the same
        webhook-ids, for a receiver that lost what it had acknowledged."""
        d = schema.deliveries
        with self._writing() as conn:
            result = conn.execute(
                update(d)
                .where(d.c.subscriber == subscriber, d.c.state == DELIVERED, d.c.created_at >= since)
                .values(state=PENDING, attempts=0, next_attempt_at=now, lease_until=None, delivered_at=None)
            )
        return result.rowcount

    def deliveries(self, states: Sequence[str] = (PENDING, DEAD), limit: int = 100) -> list[Delivery]:
        d = schema.deliveries
        with self._reading() as conn:
            rows = conn.execute(select(d).where(d.c.state.in_(states)).order_by(d.c.id.desc()).limit(limit)).mappings().all()
        return [_delivery(r) for r in rows]

    def delivery_counts(self) -> dict[str, int]:
        d = schema.deliveries
        with self._reading() as conn:
            return {state: n for state, n in conn.execute(select(d.c.state, func.count()).group_by(d.c.state))}

    def item_id_for_alert(self, alert_id: int) -> int | None:
        with self._reading() as conn:
            return conn.execute(select(schema.alerts.c.item_id).where(schema.alerts.c.id == alert_id)).scalar()

    def record_feedback(self, item_id: int, labels: dict[str, int], analyst: str, now: datetime) -> None:
        """Store an analyst's labels for an item; a later judgement replaces an earlier one."""
        f = schema.feedback
        with self._writing() as conn:
            if conn.execute(select(schema.items.c.id).where(schema.items.c.id == item_id)).first() is None:
                raise StoreError(f"no stored item with id {item_id}")
            conn.execute(f.delete().where(f.c.item_id == item_id))
            conn.execute(insert(f).values(item_id=item_id, analyst=analyst, created_at=now, **labels))

    def feedback_rows(self) -> list[dict[str, Any]]:
        """Each judged item with its text, ready to become a training example."""
        f, i = schema.feedback, schema.items
        query = select(f.c.item_id, f.c.sanctions, f.c.arms_transfer, i.c.title, i.c.summary, i.c.lang).join(i, i.c.id == f.c.item_id).order_by(f.c.item_id)
        with self._reading() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def oldest_pending_at(self) -> datetime | None:
        d = schema.deliveries
        with self._reading() as conn:
            return conn.execute(select(func.min(d.c.created_at)).where(d.c.state == PENDING)).scalar()

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise StoreError(f"database not reachable: {exc.__class__.__name__}")

    def recent_alerts(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent alerts, each with ``also_reported_by``: the other feeds that carried the same story."""
        a, i, d = schema.alerts, schema.items, schema.deliveries
        query = (
            select(
                a.c.id, a.c.subscriber, a.c.created_at, a.c.matched_labels, i.c.title, i.c.link, i.c.feed, i.c.lang,
                i.c.scores, i.c.story_id, d.c.state, d.c.attempts,
            )
            .join(i, i.c.id == a.c.item_id)
            .join(d, d.c.alert_id == a.c.id)
            .order_by(a.c.id.desc())
            .limit(limit)
        )
        with self._reading() as conn:
            alerts = [dict(r) for r in conn.execute(query).mappings()]
            story_ids = {r["story_id"] for r in alerts if r["story_id"] is not None}
            outlets: dict[int, list[str]] = {}
            if story_ids:
                for story_id, feed in conn.execute(
                    select(i.c.story_id, i.c.feed).where(i.c.story_id.in_(story_ids)).order_by(i.c.id)
                ):
                    outlets.setdefault(story_id, []).append(feed)
        for alert in alerts:
            feeds = outlets.get(alert["story_id"], [])
            alert["also_reported_by"] = [f for f in dict.fromkeys(feeds) if f != alert["feed"]]
        return alerts


def _among(dialect: str, column, name: str):
    """``column IN :name``, where ``:name`` binds all the values as one array (see ``_array``).

    An expanding ``IN`` renders one parameter per value on every execution, which cost
    more than the query itself for a poll's few dozen keys, and runs into the database's
    limit on bound parameters for long lists. One array compiles once and has no limit:
    ``= ANY(array)`` on PostgreSQL, a JSON array unpacked by ``json_each`` on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(String)))
    return column.in_(select(func.json_each(bindparam(name, type_=String)).table_valued("value").c.value))


def _array(dialect: str, values: Iterable[str]) -> Any:
    return list(values) if dialect == "postgresql" else json.dumps(list(values))


def _stored_keys(conn: Connection, feed: str, keys: Sequence[str]) -> set[str]:
    """Which of these item keys the feed already has stored."""
    return set(conn.execute(_statements(conn.dialect.name).stored_keys, {"feed": feed, "keys": _array(conn.dialect.name, keys)}).scalars())


@dataclass(frozen=True)
class _Statements:
    """The statements of a poll's write path, built once per dialect: executing the same
    statement object lets SQLAlchemy skip rebuilding the expression and its cache key,
    which cost as much as the query for a poll of five items."""

    stored_keys: Any
    band_stories: Any
    link_stories: Any
    feed_health: Any
    insert_items: Any
    insert_stories: Any
    insert_bands: Any
    join_stories: Any


@lru_cache(maxsize=None)
def _statements(dialect: str) -> _Statements:
    i, s, b, f = schema.items, schema.stories, schema.story_bands, schema.feeds
    since = bindparam("since", type_=s.c.last_seen_at.type)
    return _Statements(
        stored_keys=select(i.c.item_key).where(i.c.feed == bindparam("feed"), _among(dialect, i.c.item_key, "keys")),
        band_stories=select(b.c.band, s.c.id, s.c.signature).join(s, s.c.id == b.c.story_id)
        .where(_among(dialect, b.c.band, "bands"), s.c.last_seen_at >= since),
        link_stories=select(i.c.canonical_url, i.c.story_id).join(s, s.c.id == i.c.story_id)
        .where(_among(dialect, i.c.canonical_url, "links"), s.c.last_seen_at >= since).order_by(i.c.id),
        feed_health=select(f.c.healthy).where(f.c.name == bindparam("feed")),
        insert_items=insert(i).returning(i.c.id, sort_by_parameter_order=True),
        insert_stories=insert(s).returning(s.c.id, sort_by_parameter_order=True),
        insert_bands=insert(b),
        join_stories=update(s).where(s.c.id == bindparam("b_id"))
        .values(last_seen_at=bindparam("b_now", type_=s.c.last_seen_at.type), items_count=s.c.items_count + bindparam("b_n")),
    )


@lru_cache(maxsize=64)
def _feed_update(columns: tuple[str, ...], increments: tuple[str, ...]):
    """UPDATE of a feed's row setting ``columns`` to ``:v_<column>`` and adding ``:v_<column>``
    to ``increments``; a handful of shapes occur, each built once (see _Statements)."""
    f = schema.feeds
    values = {c: bindparam(f"v_{c}", type_=f.c[c].type) for c in columns}
    values.update({c: f.c[c] + bindparam(f"v_{c}", type_=f.c[c].type) for c in increments})
    return update(f).where(f.c.name == bindparam("v_name")).values(values)


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
