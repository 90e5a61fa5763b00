"""One poll of one feed, start to end: fetch → parse → drop seen → score → match → store.

Nothing here raises for a bad feed: the failure is recorded on the feed and logged,
so one broken feed never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

import httpx
import structlog

from alertd.clock import Clock
from alertd.config import FeedSettings, HttpSettings, SubscriberSettings
from alertd.delivery.payload import alert_payload
from alertd.domain import Article, ScoredItem
from alertd.feeds.fetch import FetchLimits, Validators, fetch
from alertd.feeds.parse import parse_feed
from alertd.matching import match
from alertd.model import RelevanceModel
from alertd.store import Store
from alertd.store.database import NewAlert, PollOutcome
from alertd.text.language import detect_language

log = structlog.get_logger("alertd.poll")


@dataclass(frozen=True)
class PollReport:
    feed: str
    status: int | None
    error: str | None = None
    new_items: int = 0
    alerts: int = 0


class Pipeline:
    def __init__(
        self,
        store: Store,
        client: httpx.Client,
        model: RelevanceModel,
        http: HttpSettings,
        subscribers: Sequence[SubscriberSettings],
        clock: Clock,
    ):
        self._store = store
        self._client = client
        self._model = model
        self._limits = FetchLimits(http.max_body_bytes, http.total_timeout_seconds)
        self._subscribers = {s.name: s for s in subscribers}
        self._clock = clock

    def poll(self, feed: FeedSettings) -> PollReport:
        bound = log.bind(feed=feed.name)
        state = self._store.feed_state(feed.name)
        validators = Validators(state.etag, state.last_modified) if state and state.url == feed.url else Validators()
        result = fetch(self._client, feed.url, validators, self._limits)
        if result.error:
            self._store.record_poll(PollOutcome(feed.name, feed.url, result.status, result.error), self._clock.now(), self._payload(feed))
            failures = (state.consecutive_failures if state else 0) + 1
            bound.warning("feed_fetch_failed", status=result.status, error=result.error, consecutive_failures=failures)
            return PollReport(feed.name, result.status, result.error)
        if result.not_modified:
            self._store.record_poll(PollOutcome(feed.name, feed.url, 304, None, validators.etag, validators.last_modified), self._clock.now(), self._payload(feed))
            bound.debug("feed_not_modified")
            return PollReport(feed.name, 304)

        parsed = parse_feed(result.body or b"", result.content_type, feed.language)
        if parsed.problem:
            bound.warning("feed_malformed", reason=parsed.problem, items_parsed=len(parsed.items))
        error = parsed.problem if not parsed.items else None
        known = self._store.known_item_keys(feed.name, [i.key for i in parsed.items])
        fresh = [i for i in parsed.items if i.key not in known]
        articles = [Article(i.title, i.summary, detect_language(f"{i.title}\n{i.summary}", i.lang_hint)) for i in fresh]
        scored = [ScoredItem(feed.name, i, a, s) for i, a, s in zip(fresh, articles, self._model.score(articles))]
        subscribers = list(self._subscribers.values())
        to_store = []
        alert_count = 0
        immediate_budget = self._immediate_budget()
        for entry in scored:
            alerts = match(entry, feed.tags, subscribers, self._model.thresholds)
            alert_count += len(alerts)
            to_store.append((entry, [self._new_alert(a, immediate_budget) for a in alerts]))
            if alerts:
                bound.info(
                    "item_matched", item=entry.item.key, title=entry.item.title[:120],
                    scores={k: round(v, 3) for k, v in entry.scores.probabilities.items()},
                    subscribers=[a.subscriber for a in alerts],
                )
        outcome = PollOutcome(
            feed.name, feed.url, result.status, error, result.validators.etag, result.validators.last_modified, to_store
        )
        self._store.record_poll(outcome, self._clock.now(), self._payload(feed))
        bound.info("feed_polled", status=result.status, items=len(parsed.items), new_items=len(fresh), alerts=alert_count)
        return PollReport(feed.name, result.status, error, len(fresh), alert_count)

    def _immediate_budget(self) -> dict[str, int]:
        """How many more immediate emails each rate-limited subscriber may get this hour."""
        since = self._clock.now() - timedelta(hours=1)
        return {
            s.name: max(0, s.max_immediate_per_hour - self._store.immediate_count_since(s.name, since))
            for s in self._subscribers.values()
            if s.max_immediate_per_hour and s.delivery_mode == "immediate"
        }

    def _new_alert(self, alert, budget: dict[str, int]) -> NewAlert:
        """Hold the alert for a digest when the subscriber wants digests or is over its hourly limit."""
        subscriber = self._subscribers[alert.subscriber]
        held = subscriber.delivery_mode == "digest"
        if subscriber.name in budget:
            held = budget[subscriber.name] <= 0
            budget[subscriber.name] -= 1
        return NewAlert(alert, subscriber.channel, held)

    @staticmethod
    def _payload(feed: FeedSettings):
        def build(alert_id, message_id, scored, alert, now):
            return alert_payload(alert_id, message_id, scored, alert, feed.tags, now)

        return build
