"""Pure: decide which subscribers hear about a scored article."""

from __future__ import annotations

from typing import Sequence

from alertd.config import SubscriberSettings
from alertd.domain import Alert, ScoredItem


def match(scored: ScoredItem, feed_tags: Sequence[str], subscribers: Sequence[SubscriberSettings], model_thresholds: dict[str, float]) -> list[Alert]:
    alerts = []
    for subscriber in subscribers:
        if subscriber.languages and scored.article.lang not in subscriber.languages:
            continue
        if subscriber.feed_tags and not set(subscriber.feed_tags) & set(feed_tags):
            continue
        matched = tuple(
            label
            for label in subscriber.labels
            if scored.scores.probabilities.get(label, 0.0) >= subscriber.thresholds.get(label, model_thresholds[label])
        )
        if matched:
            alerts.append(Alert(subscriber=subscriber.name, matched_labels=matched))
    return alerts
