"""One poll of one feed, start to end: fetch → parse → drop seen → page text → clean →
language → score → match → one transaction (items, stories, alerts, outbox rows, feed
state with its next poll time, cached page texts, operator notices).

Nothing here raises for a bad feed: the failure is recorded on the feed with its kind,
logged under a specific event name, and the feed backs off; one broken feed never stops
the others.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

import structlog

from alertd.clock import Clock
from alertd.config import FeedSettings, Settings
from alertd.delivery.payload import NOTICE_RECOVERED, NOTICE_UNHEALTHY, alert_payload, notice_payload
from alertd.domain import Article, ScoredItem
from alertd.feeds.fetch import FetchLimits, HttpClient, Validators, fetch
from alertd.feeds.hosts import HostSlots, host_of
from alertd.feeds.pages import PageFetcher
from alertd.feeds.parse import ParsedFeed, parse_feed
from alertd.feeds.schedule import PollPolicy, next_poll_at, next_poll_delay
from alertd.matching import match
from alertd.metrics import Metrics
from alertd.model import RelevanceModel
from alertd.stories import StoryMatcher, signature
from alertd.store import Store
from alertd.store.database import FeedState, NewAlert, NewNotice, PollOutcome
from alertd.text.clean import clean_article_text
from alertd.text.language import detect_language

log = structlog.get_logger("alertd.poll")


@dataclass(frozen=True)
class PollReport:
    feed: str
    status: int | None
    error: str | None = None
    new_items: int = 0
    alerts: int = 0
    failure: str | None = None
    next_poll_at: datetime | None = None  # None: the feed is disabled
    alerts_merged: int = 0


@dataclass(frozen=True)
class _Target:
    """Which URL to poll and with which validators: the stored (possibly redirected) address
    while the config still names the same feed, else the config's, from scratch."""

    url: str
    validators: Validators
    disabled_reason: str | None

    @classmethod
    def of(cls, feed: FeedSettings, state: FeedState | None) -> "_Target":
        if state and (state.configured_url or state.url) == feed.url:
            return cls(state.url, Validators(state.etag, state.last_modified), state.disabled_reason)
        return cls(feed.url, Validators(), None)


def _nothing_to_change(state: FeedState | None, feed: FeedSettings, url: str) -> bool:
    """A 304 for a healthy feed at its usual address changes only its poll times."""
    return (
        state is not None and state.url == url and (state.configured_url or state.url) == feed.url and state.healthy
        and state.consecutive_failures == 0 and state.last_error is None and state.disabled_reason is None
    )


class QuietPolls:
    """Not-modified polls that change only a feed's poll times, written many per transaction.

    Most polls of a busy deployment are such 304s, and one transaction each would make the
    database the bottleneck. Losing buffered ones in a crash costs nothing that matters:
    the feed is polled a little early after the restart. Buffered polls are written when
    ``batch`` accumulate or one waits ``max_wait``, and on every flush().
    """

    def __init__(self, store: Store, clock: Clock, batch: int = 200, max_wait: timedelta = timedelta(seconds=2)):
        self._store = store
        self._clock = clock
        self._batch = batch
        self._max_wait = max_wait
        self._lock = threading.Lock()
        self._pending: list[tuple[str, datetime, datetime | None]] = []

    def add(self, feed: str, polled_at: datetime, next_poll_at: datetime | None) -> None:
        with self._lock:
            self._pending.append((feed, polled_at, next_poll_at))
            due = len(self._pending) >= self._batch or self._clock.now() - self._pending[0][1] >= self._max_wait
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            self._store.record_quiet_polls(pending)


class Pipeline:
    def __init__(
        self,
        store: Store,
        client: HttpClient,
        model: RelevanceModel,
        settings: Settings,
        clock: Clock,
        hosts: HostSlots | None = None,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ):
        self._store = store
        self._client = client
        self._clock = clock
        self._rng = rng or random.Random()
        self.hosts = hosts or HostSlots(settings.polling.per_host_connections)
        self.metrics = metrics
        self._lock = threading.Lock()
        self._known_states: dict[str, tuple[FeedState | None, int]] = {}  # feed -> (state, polls done when read)
        # feed -> keys of its entries when this process last stored a poll of it: all of them
        # were stored then, so an entry key among them needs no database read to be skipped
        self._stored_last_poll: dict[str, frozenset[str]] = {}
        self._polls_done: dict[str, int] = {}
        self._quiet = QuietPolls(store, clock)
        # Parsing, scoring and writing are CPU work, and Python runs one thread at a time:
        # two polls crunching at once add no throughput, only memory (each holds a parsed
        # feed and its articles) and interpreter-lock hand-offs (decision 42). Fetches, the
        # waiting part, stay as concurrent as the workers allow.
        self._crunching = threading.Lock()
        self.reconfigure(settings, model)

    def reconfigure(self, settings: Settings, model: RelevanceModel) -> None:
        """Take new settings and model (at start, and on SIGHUP); polls already running
        finish with the ones they started with."""
        self._model = model
        self._settings = settings
        self._limits = FetchLimits(settings.http.max_body_bytes, settings.http.total_timeout_seconds)
        self._subscribers = {s.name: s for s in settings.subscribers}
        self._operators = [s for s in settings.subscribers if s.operator]
        polling = settings.polling
        self._policy = PollPolicy(polling.min_interval_seconds, polling.max_interval_seconds, polling.backoff_max_seconds)
        self._stories = StoryMatcher(settings.stories.similarity_threshold, timedelta(hours=settings.stories.window_hours)) if settings.stories.enabled else None
        self._pages = PageFetcher(self._store, self._client, self._limits, self.hosts, self._clock, settings.articles)

    def targets(self, feeds: Sequence[FeedSettings]) -> dict[str, tuple[str, str | None]]:
        """For each feed, the URL its next poll will fetch and, when it is disabled, why.

        The states read here are kept for the polls about to start, so a poll need not read
        its feed's state a second time; a poll that finished in between makes them stale,
        and then the poll reads afresh."""
        states = self._store.feed_states([f.name for f in feeds])
        with self._lock:
            for feed in feeds:
                self._known_states[feed.name] = (states.get(feed.name), self._polls_done.get(feed.name, 0))
        return {
            f.name: (target.url, target.disabled_reason) for f in feeds if (target := _Target.of(f, states.get(f.name)))
        }

    def _state(self, feed: str) -> FeedState | None:
        with self._lock:
            known = self._known_states.pop(feed, None)
            if known is not None and known[1] == self._polls_done.get(feed, 0):
                return known[0]
        return self._store.feed_state(feed)

    def _already_stored(self, feed: str, keys: list[str]) -> set[str]:
        """Which of a feed's entry keys are stored. After this process stored a poll of the
        feed, keys from that poll are known to be, and the others are taken as new without
        reading the database: most changed feeds repeat all but a few entries, and the read
        cost as much as parsing them. (The write checks again, so an entry stored meanwhile
        by another process is still stored once; it only costs its parse.)"""
        with self._lock:
            last = self._stored_last_poll.get(feed)
        if last is None:
            return self._store.known_item_keys(feed, keys)
        return {key for key in keys if key in last}

    def flush(self) -> None:
        """Write the buffered not-modified polls (see QuietPolls)."""
        self._quiet.flush()

    def poll(self, feed: FeedSettings) -> PollReport:
        try:
            return self._poll(feed)
        finally:
            with self._lock:
                self._polls_done[feed.name] = self._polls_done.get(feed.name, 0) + 1

    def _poll(self, feed: FeedSettings) -> PollReport:
        bound = log.bind(feed=feed.name)
        state = self._state(feed.name)
        target = _Target.of(feed, state)
        if target.disabled_reason:
            return PollReport(feed.name, state.last_status if state else None, target.disabled_reason, failure="gone")
        result = fetch(self._client, target.url, target.validators, self._limits)
        now = self._clock.now()
        url = target.url
        if result.permanent_redirect and result.permanent_redirect != url and result.failure is None:
            bound.info("feed_moved", old_url=url, new_url=result.permanent_redirect, status=result.status)
            url = result.permanent_redirect

        parsed: ParsedFeed | None = None
        failure, error = result.failure, result.error
        if not error and not result.not_modified:
            with self._crunching:
                parsed = parse_feed(result.body or b"", result.content_type, feed.language,
                                    known=lambda keys: self._already_stored(feed.name, keys))
            if parsed.encoding_repaired:
                bound.info("feed_encoding_repaired", encoding=parsed.encoding, declared_content_type=result.content_type)
            if parsed.problem and not parsed.items:
                failure, error = ("not_a_feed" if "not a feed" in parsed.problem or "not an RSS" in parsed.problem else "malformed"), parsed.problem
            elif parsed.problem:
                bound.warning("feed_malformed", reason=parsed.problem, items_parsed=len(parsed.items))

        failures = (state.consecutive_failures if state else 0) + 1 if failure else 0
        was_healthy = state.healthy if state else True
        healthy = failure != "gone" and failures < self._settings.polling.unhealthy_after_failures
        delay = next_poll_delay(
            interval=feed.interval_seconds, jitter=feed.jitter_seconds, failures=failures, failure=failure, cache=result.cache,
            ttl_minutes=parsed.ttl_minutes if parsed else None, now=now, policy=self._policy, rng=self._rng,
        )
        when = next_poll_at(now, delay)
        notices = self._health_notices(bound, feed, url, was_healthy, healthy, failures, failure, error, now)
        common = dict(
            configured_url=feed.url, failure=failure, next_poll_at=when, healthy=healthy, notices=notices,
            disabled_reason="HTTP 410 Gone: the publisher removed this feed" if failure == "gone" else None,
        )

        self._count_poll(feed.name, result.status, "error" if failure else "not_modified" if result.not_modified else "ok", now)
        if failure:
            level = bound.error if failure == "gone" else bound.warning
            level(f"feed_{failure}", status=result.status, error=error, consecutive_failures=failures,
                  retry_in_seconds=round(delay, 1) if delay is not None else None, url=url)
            outcome = PollOutcome(feed.name, url, result.status, error, target.validators.etag, target.validators.last_modified, **common)
            self._store.record_poll(outcome, now, self._payload(feed))
            return PollReport(feed.name, result.status, error, failure=failure, next_poll_at=when)
        if result.not_modified or parsed is None:
            if _nothing_to_change(state, feed, url) and not notices:
                self._quiet.add(feed.name, now, when)
            else:
                outcome = PollOutcome(feed.name, url, 304, None, target.validators.etag, target.validators.last_modified, **common)
                self._store.record_poll(outcome, now, self._payload(feed))
            bound.debug("feed_not_modified", next_poll_in_seconds=round(delay or 0, 1))
            return PollReport(feed.name, 304, next_poll_at=when)

        known = set() if parsed.screened else self._store.known_item_keys(feed.name, [i.key for i in parsed.items])
        fresh = list({i.key: i for i in parsed.items if i.key not in known}.values())
        pages = self._pages.texts_for(fresh, feed, host_of(url))
        with self._crunching:  # see __init__
            articles = []
            for item in fresh:
                text = clean_article_text(pages.texts.get(item.key, item.summary))
                articles.append(Article(item.title, text, detect_language(f"{item.title}\n{text}", item.lang_hint)))
            scored = [ScoredItem(feed.name, i, a, s) for i, a, s in zip(fresh, articles, self._model.score(articles))]
            self._count_scores(feed.name, parsed.entries, scored)
            to_store = []
            immediate_budget = self._immediate_budget()
            for entry in scored:
                alerts = match(entry, feed.tags, list(self._subscribers.values()), self._model.thresholds)
                to_store.append((entry, [self._new_alert(a, immediate_budget) for a in alerts]))
            fingerprints = {e.item.key: signature(e.item.title, e.article.text) for e in scored} if self._stories else {}
            outcome = PollOutcome(
                feed.name, url, result.status, None, result.validators.etag, result.validators.last_modified, to_store,
                fingerprints=fingerprints, article_texts=pages.to_cache, **common,
            )
            recorded = self._store.record_poll(outcome, now, self._payload(feed), self._stories)
            with self._lock:
                if parsed.screened:
                    self._stored_last_poll[feed.name] = frozenset(parsed.entry_keys)
                else:
                    self._stored_last_poll.pop(feed.name, None)
        alert_count = len(recorded.delivery_ids) - len(notices)
        if self.metrics:
            for _, alerts in to_store:
                for new_alert in alerts:
                    self.metrics.alerts.labels(new_alert.alert.subscriber).inc()
        for entry, alerts in to_store:
            if alerts:
                bound.info(
                    "item_matched", item=entry.item.key, title=entry.item.title[:120],
                    scores={k: round(v, 3) for k, v in entry.scores.probabilities.items()},
                    subscribers=[a.alert.subscriber for a in alerts],
                )
        if recorded.alerts_merged:
            bound.info("alerts_merged_into_story", alerts_merged=recorded.alerts_merged, items_joined_story=recorded.items_joined_story)
        bound.info("feed_polled", status=result.status, items=parsed.entries, new_items=recorded.new_items, alerts=alert_count,
                   pages_fetched=len(pages.to_cache), next_poll_in_seconds=round(delay or 0, 1))
        return PollReport(feed.name, result.status, None, recorded.new_items, alert_count, next_poll_at=when, alerts_merged=recorded.alerts_merged)

    def _count_poll(self, feed: str, status: int | None, outcome: str, now: datetime) -> None:
        if self.metrics:
            self.metrics.polls.labels(feed, outcome).inc()
            if status is not None:
                self.metrics.http_status.labels(feed, str(status)).inc()
            if outcome != "error":
                self.metrics.last_success.labels(feed).set(now.timestamp())

    def _count_scores(self, feed: str, items: int, scored: list[ScoredItem]) -> None:
        if self.metrics:
            self.metrics.items_seen.labels(feed).inc(items)
            self.metrics.articles_scored.inc(len(scored))
            for entry in scored:
                for label, p in entry.scores.probabilities.items():
                    self.metrics.scores.labels(label).observe(p)

    def _health_notices(self, bound, feed: FeedSettings, url: str, was_healthy: bool, healthy: bool, failures: int,
                        failure: str | None, error: str | None, now: datetime) -> list[NewNotice]:
        if was_healthy == healthy:
            return []
        if healthy:
            bound.info("feed_recovered")
            event = NOTICE_RECOVERED
        else:
            bound.warning("feed_unhealthy", consecutive_failures=failures, failure=failure, error=error)
            event = NOTICE_UNHEALTHY
        notices = []
        for operator in self._operators:
            message_id = f"msg_{uuid.uuid4().hex}"
            payload = notice_payload(message_id, event, operator.name, feed.name, url, failures, failure, error, now)
            notices.append(NewNotice(operator.name, operator.channel, message_id, payload))
        return notices

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


