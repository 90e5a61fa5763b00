"""Prometheus metrics. Counters and histograms are updated where things happen; gauges
that describe stored state (outbox depth, oldest pending age) are read from the store
at scrape time, so they are never stale and cost nothing between scrapes."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("alertd_feed_polls", "Feed polls, by feed and outcome (ok, not_modified, error).", ["feed", "outcome"], registry=r)
        self.http_status = Counter("alertd_feed_http_responses", "HTTP status codes answered by feeds.", ["feed", "code"], registry=r)
        self.items_seen = Counter("alertd_items_seen", "Feed items seen, new or not.", ["feed"], registry=r)
        self.articles_scored = Counter("alertd_articles_scored", "Articles scored by the model.", registry=r)
        self.scores = Histogram("alertd_article_score", "Model probability per label.", ["label"], buckets=SCORE_BUCKETS, registry=r)
        self.alerts = Counter("alertd_alerts", "Alerts created, by subscriber.", ["subscriber"], registry=r)
        self.deliveries = Counter("alertd_delivery_attempts", "Delivery attempts, by channel and result (delivered, retry, dead).", ["channel", "result"], registry=r)
        self.last_success = Gauge("alertd_feed_last_success_timestamp_seconds", "Unix time of each feed's last successful poll.", ["feed"], registry=r)
        self.model = Info("alertd_model", "The loaded model.", registry=r)

    def watch_store(self, outbox_state: Callable[[], tuple[dict[str, int], datetime | None]], clock: Callable[[], datetime]) -> None:
        """Expose outbox depth by state and the age of the oldest pending delivery."""
        self.registry.register(_OutboxCollector(outbox_state, clock))


class _OutboxCollector(Collector):
    def __init__(self, outbox_state, clock):
        self._outbox_state = outbox_state
        self._clock = clock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts, oldest = self._outbox_state()
        depth = GaugeMetricFamily("alertd_outbox_deliveries", "Deliveries in the outbox, by state.", labels=["state"])
        for state in ("pending", "held", "delivered", "digested", "dead"):
            depth.add_metric([state], counts.get(state, 0))
        yield depth
        age = (self._clock() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("alertd_outbox_oldest_pending_age_seconds", "Age of the oldest pending delivery (0 when none).", value=max(0.0, age))
