"""The store against real databases: SQLite always, PostgreSQL when reachable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from alertd.errors import StoreError
from alertd.store import open_store
from alertd.store.migrations import LATEST
from alertd.store.database import DEAD, DELIVERED, PENDING, PollOutcome
from alertd.domain import Article, Item, ScoredItem
from factories import outcome_with, scored_item, simple_payload

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class TestRecordPoll:
    def test_items_alerts_and_outbox_rows_written_together(self, store):
        """One poll writes the feed state, the item, one alert per subscriber and one delivery each."""
        ids = store.record_poll(outcome_with([scored_item()], subscribers=("a", "b")), NOW, simple_payload).delivery_ids
        assert len(ids) == 2
        state = store.feed_state("feed-a")
        assert state.etag == '"etag-1"' and state.items_total == 1 and state.last_status == 200
        pending = store.deliveries([PENDING])
        assert {d.subscriber for d in pending} == {"a", "b"}
        assert all(d.payload["webhook_id"] == d.message_id for d in pending)

    def test_same_item_twice_alerts_once(self, store):
        """An item already stored is skipped, so a re-poll or a restart never alerts twice."""
        store.record_poll(outcome_with([scored_item()]), NOW, simple_payload)
        again = store.record_poll(outcome_with([scored_item()]), NOW + timedelta(minutes=5), simple_payload)
        assert again.delivery_ids == [] and again.new_items == 0
        assert len(store.deliveries([PENDING, DELIVERED, DEAD])) == 1
        assert store.known_item_keys("feed-a", ["guid:1", "guid:2"]) == {"guid:1"}

    def test_failure_counts_up_and_keeps_validators(self, store):
        """A failed poll increments the failure count and keeps the last ETag for the next try."""
        store.record_poll(outcome_with([]), NOW, simple_payload)
        for _ in range(2):
            store.record_poll(PollOutcome("feed-a", "https://news.example/feed-a.xml", 500, "HTTP 500"), NOW, simple_payload)
        state = store.feed_state("feed-a")
        assert state.consecutive_failures == 2 and state.etag == '"etag-1"' and state.last_error == "HTTP 500"
        store.record_poll(outcome_with([]), NOW, simple_payload)
        assert store.feed_state("feed-a").consecutive_failures == 0

    def test_payload_builder_failure_rolls_back_everything(self, store):
        """If building a payload fails, neither the item nor its alert is stored: the next poll retries it."""

        def broken(*_):
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.record_poll(outcome_with([scored_item()]), NOW, broken)
        assert store.known_item_keys("feed-a", ["guid:1"]) == set()
        assert store.deliveries([PENDING]) == []


    def test_quiet_polls_update_only_poll_times(self, store):
        """Batched not-modified polls move the poll times and keep everything else."""
        for feed in ("feed-a", "feed-b"):
            store.record_poll(PollOutcome(feed, f"https://news.example/{feed}.xml", 200, None, '"e1"'), NOW, simple_payload)
        later, next_at = NOW + timedelta(minutes=15), NOW + timedelta(minutes=30)
        store.record_quiet_polls([("feed-a", later, next_at), ("feed-b", later, next_at)])
        states = store.feed_states(["feed-a", "feed-b", "missing"])
        assert set(states) == {"feed-a", "feed-b"}
        for state in states.values():
            assert (state.last_polled_at, state.last_success_at, state.next_poll_at, state.last_status) == (later, later, next_at, 304)
            assert state.etag == '"e1"' and state.consecutive_failures == 0


class TestStoriesInOnePoll:
    WIRE = ("North Korea ships artillery shells to Russia in breach of UN arms embargo",
            "Satellite images show a North Korean cargo ship loading munitions containers at Rajin port for delivery to Russian forces.")
    OTHER = ("Central bank keeps interest rates on hold as inflation slows",
             "The monetary policy committee voted to keep the benchmark rate unchanged for a third month.")

    def poll(self, store, feed, entries, now=NOW):
        """entries: (key, title, text, link) — recorded as one poll of ``feed`` with story matching on."""
        from alertd.stories import StoryMatcher, signature

        items = []
        for key, title, text, link in entries:
            item = scored_item(key, feed=feed, title=title)
            items.append(ScoredItem(feed, Item(key, title, link, text, item.item.published), Article(title, text, "en"), item.scores))
        outcome = outcome_with(items, feed=feed)
        fingerprints = {i.item.key: signature(i.item.title, i.article.text) for i in items}
        outcome = PollOutcome(**{**outcome.__dict__, "fingerprints": fingerprints})
        return store.record_poll(outcome, now, simple_payload, StoryMatcher(0.5, timedelta(days=3)))

    def stories(self, store):
        with store.engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT s.id, s.items_count, count(i.id) FROM stories s JOIN items i ON i.story_id = s.id "
                                        "GROUP BY s.id, s.items_count ORDER BY s.id")).all()
        return [(count, stored) for _, count, stored in rows]

    def test_copies_within_one_poll_share_a_story_and_alert_once(self, store):
        """An aggregator feed carrying two outlets' copies of one wire story and another story:
        two stories, one alert for the wire story, the copy counted as joined and merged."""
        title, text = self.WIRE
        result = self.poll(store, "agg", [
            ("1", title, text, "https://a.example/1"),
            ("2", self.OTHER[0], self.OTHER[1], "https://b.example/2"),
            ("3", title.replace("ships", "sends") + " - Yonhap", "SEOUL (Yonhap) - " + text, "https://c.example/3"),
        ])
        assert result.new_items == 3 and result.items_joined_story == 1 and result.alerts_merged == 1
        assert len(result.delivery_ids) == 2  # the wire story once, the other story once
        assert self.stories(store) == [(2, 2), (1, 1)]

    def test_later_poll_joins_the_story_and_same_link_joins_within_a_poll(self, store):
        """A later poll's copy joins the stored story (items_count grows); two items under one
        canonical link in the same poll are one story even with nothing else in common."""
        title, text = self.WIRE
        self.poll(store, "a", [("1", title, text, "https://a.example/1")])
        later = self.poll(store, "b", [
            ("1", title + " - Reuters", text, "https://b.example/1"),
            ("2", "Korea Utara kirim peluru ke Rusia", "Kapal kargo memuat amunisi.", "https://news.example/x?utm_source=a"),
            ("3", "Pyongyang sends shells", "Munitions loaded.", "https://news.example/x?utm_source=b#top"),
        ], NOW + timedelta(hours=1))
        assert later.items_joined_story == 2 and later.alerts_merged == 2
        assert self.stories(store) == [(2, 2), (2, 2)]


class TestConcurrency:
    def test_reads_do_not_wait_for_a_writer(self, tmp_path):
        """Under WAL a reader never waits for another process's open write transaction
        (the CLI reading while the daemon writes)."""
        import sqlite3
        import threading

        path = tmp_path / "alertd.db"
        store = open_store(f"sqlite:///{path}")
        store.record_poll(PollOutcome("feed-a", "https://news.example/a.xml", 200, None), NOW, simple_payload)
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE feeds SET last_error = 'in progress'")
        result: list = []
        reader = threading.Thread(target=lambda: result.append(store.feed_state("feed-a")), daemon=True)
        reader.start()
        reader.join(5)  # a read that took the write lock would wait for the 30 s busy timeout
        try:
            assert result and result[0].last_error is None  # the committed state, not the open write
        finally:
            writer.execute("ROLLBACK")
            writer.close()
            store.close()


class TestOutboxLeases:
    def test_claim_leases_rows_to_one_worker(self, store):
        """Claimed rows are not handed to a second worker while the lease holds."""
        store.record_poll(outcome_with([scored_item("guid:1"), scored_item("guid:2")]), NOW, simple_payload)
        first = store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w1", 10)
        second = store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w2", 10)
        assert len(first) == 2 and second == []

    def test_expired_lease_is_reclaimed(self, store):
        """A crashed worker's claims are retried after the lease expires."""
        store.record_poll(outcome_with([scored_item()]), NOW, simple_payload)
        store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "crashed", 10)
        later = NOW + timedelta(minutes=3)
        reclaimed = store.claim_due_deliveries(later, later + timedelta(minutes=2), "w2", 10)
        assert [d.subscriber for d in reclaimed] == ["sub-a"]

    def test_release_returns_unattempted_claims(self, store):
        """Leases released on shutdown are claimable at once."""
        store.record_poll(outcome_with([scored_item()]), NOW, simple_payload)
        store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w1", 10)
        assert store.release_leases("w1") == 1
        assert len(store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w2", 10)) == 1

    def test_not_due_rows_wait(self, store):
        """A row scheduled for later is not claimed now."""
        store.record_poll(outcome_with([scored_item()]), NOW, simple_payload)
        [delivery] = store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w1", 10)
        store.mark_failed(delivery.id, "HTTP 500", retry_at=NOW + timedelta(minutes=10))
        assert store.claim_due_deliveries(NOW + timedelta(minutes=5), NOW + timedelta(minutes=7), "w1", 10) == []
        assert len(store.claim_due_deliveries(NOW + timedelta(minutes=11), NOW + timedelta(minutes=13), "w1", 10)) == 1

    def test_dead_letters_are_kept_and_requeued(self, store):
        """A dead delivery stays listed with its error and can be re-queued."""
        store.record_poll(outcome_with([scored_item()], subscribers=("a", "b")), NOW, simple_payload)
        for delivery in store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w1", 10):
            store.mark_failed(delivery.id, "receiver gone", retry_at=None)
        dead = store.deliveries([DEAD])
        assert len(dead) == 2 and dead[0].last_error == "receiver gone"
        assert store.requeue_dead(NOW, subscriber="a") == 1
        assert [d.subscriber for d in store.deliveries([PENDING])] == ["a"]
        assert store.requeue_dead(NOW) == 1


class TestMigrations:
    def test_reopening_keeps_data(self, database_url):
        """Opening an existing database runs no destructive step."""
        store = open_store(database_url)
        store.record_poll(outcome_with([scored_item()]), NOW, simple_payload)
        store.close()
        store = open_store(database_url)
        assert store.known_item_keys("feed-a", ["guid:1"]) == {"guid:1"}
        store.close()

    def test_newer_schema_is_refused(self, database_url):
        """A database written by a newer alertd is refused with an upgrade hint, not corrupted."""
        store = open_store(database_url)
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE schema_version SET version = 999"))
        store.close()
        with pytest.raises(StoreError, match="newer"):
            open_store(database_url)

    def test_unreachable_database_is_a_clear_error(self):
        """A bad URL gives a StoreError naming the database, without its password."""
        with pytest.raises(StoreError) as info:
            open_store("postgresql+psycopg://alertd:hunter2@127.0.0.1:1/nothing?connect_timeout=2")
        assert "hunter2" not in str(info.value) and "127.0.0.1:1" in str(info.value)


class TestFeedback:
    def test_feedback_round_trip_latest_wins(self, store):
        """An analyst's labels are stored per item; a later judgement replaces the earlier one."""
        store.record_poll(outcome_with([scored_item(title="Story")]), NOW, simple_payload)
        item_id = store.item_id_for_alert(1)
        store.record_feedback(item_id, {"sanctions": 1, "arms_transfer": 0}, "ana", NOW)
        store.record_feedback(item_id, {"sanctions": 0, "arms_transfer": 1}, "ben", NOW)
        [row] = store.feedback_rows()
        assert (row["title"], row["sanctions"], row["arms_transfer"]) == ("Story", 0, 1)

    def test_unknown_item_is_refused(self, store):
        """Feedback for an item that does not exist is an error."""
        with pytest.raises(StoreError, match="no stored item"):
            store.record_feedback(999, {"sanctions": 1, "arms_transfer": 0}, "ana", NOW)


def old_database(url: str, version: int) -> None:
    """Create a genuine database of an earlier schema version, holding one item, its alert and delivery."""
    import schema_v2

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [t for t in schema_v2.metadata.sorted_tables if version >= 2 or t.name != "feedback"]
        schema_v2.metadata.create_all(conn, tables=tables)
        conn.execute(sa.insert(schema_v2.schema_version).values(version=version))
        conn.execute(sa.insert(schema_v2.feeds).values(name="feed-a", url="https://news.example/feed-a.xml", etag='"e1"',
                                                       consecutive_failures=0, items_total=1, last_new_items=1))
        item_id = conn.execute(sa.insert(schema_v2.items).values(
            feed="feed-a", item_key="guid:1", title="Old story", link="https://news.example/1", summary="Text", seen_at=NOW,
            scores={}, relevant=True, model_id="m")).inserted_primary_key[0]
        alert_id = conn.execute(sa.insert(schema_v2.alerts).values(item_id=item_id, subscriber="sub-a", matched_labels=[],
                                                                   created_at=NOW)).inserted_primary_key[0]
        conn.execute(sa.insert(schema_v2.deliveries).values(alert_id=alert_id, subscriber="sub-a", channel="webhook", message_id="msg_old",
                                                            payload={"x": 1}, state=PENDING, attempts=0, next_attempt_at=NOW, created_at=NOW))
    engine.dispose()


class TestUpgrade:
    def test_version_1_database_gains_feedback_table(self, database_url):
        """A database created by the first release is upgraded in place, its data kept."""
        old_database(database_url, 1)
        store = open_store(database_url)
        assert store.known_item_keys("feed-a", ["guid:1"]) == {"guid:1"}
        store.record_feedback(store.item_id_for_alert(1), {"sanctions": 1, "arms_transfer": 1}, "ana", NOW)
        with store.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == LATEST
        store.close()

    def test_version_2_database_gains_schedule_stories_and_notices(self, database_url):
        """A version 2 database keeps its feed state, items and outbox, and can then store stories and notices."""
        from alertd.store.database import NewNotice
        from alertd.stories import StoryMatcher, signature

        old_database(database_url, 2)
        store = open_store(database_url)
        state = store.feed_state("feed-a")
        assert state.etag == '"e1"' and state.healthy and state.configured_url == state.url
        [old] = store.deliveries([PENDING])
        assert old.message_id == "msg_old" and old.alert_id == 1
        item = scored_item("guid:2", title="North Korea ships shells to Russia")
        outcome = outcome_with([item])
        outcome = PollOutcome(**{**outcome.__dict__, "fingerprints": {"guid:2": signature(item.item.title, "x")},
                                 "notices": [NewNotice("ops", "webhook", "msg_notice", {"type": "feed.unhealthy"})]})
        result = store.record_poll(outcome, NOW, simple_payload, StoryMatcher(0.5, timedelta(days=3)))
        assert len(result.delivery_ids) == 2 and {d.payload.get("type") for d in store.deliveries([PENDING])} >= {"feed.unhealthy"}
        with store.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == LATEST
            assert conn.execute(sa.text("SELECT count(*) FROM stories")).scalar() == 1
            assert "ix_items_canonical_url" in {ix["name"] for ix in sa.inspect(conn).get_indexes("items")}
        store.close()


class TestDisabledEndpoints:
    def test_disabled_subscriber_is_not_claimed_until_enabled(self, store):
        """A disabled endpoint's deliveries stay pending and unclaimed; enabling releases them."""
        store.record_poll(outcome_with([scored_item()], subscribers=("gone", "fine")), NOW, simple_payload)
        store.disable_endpoint("gone", "410", NOW)
        claimed = store.claim_due_deliveries(NOW, NOW + timedelta(minutes=2), "w", 10)
        assert [d.subscriber for d in claimed] == ["fine"]
        store.mark_delivered(claimed[0].id, NOW)
        assert store.enable_endpoint("gone") and not store.enable_endpoint("gone")
        later = NOW + timedelta(minutes=3)
        assert [d.subscriber for d in store.claim_due_deliveries(later, later + timedelta(minutes=2), "w", 10)] == ["gone"]
