"""Pure: decide which subscribers hear about a scored article."""

from __future__ import annotations

import re
from typing import Sequence

from alertd.config import SubscriberSettings
from alertd.domain import Alert, ScoredItem
from alertd.text.gazetteer import countries_mentioned
from alertd.text.normalise import normalise


def contains_phrase(normalised_text: str, phrase: str) -> bool:
    """Phrase match at word boundaries where words are spaced, as a substring where not."""
    wanted = normalise(phrase)
    if not wanted:
        return False
    if re.search(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", wanted):
        return wanted in normalised_text
    return re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", normalised_text) is not None


def match(scored: ScoredItem, feed_tags: Sequence[str], subscribers: Sequence[SubscriberSettings], model_thresholds: dict[str, float]) -> list[Alert]:
    text = normalise(f"{scored.article.title}\n{scored.article.text}")
    mentioned: set[str] | None = None
    alerts = []
    for subscriber in subscribers:
        if subscriber.languages and scored.article.lang not in subscriber.languages:
            continue
        if subscriber.feed_tags and not set(subscriber.feed_tags) & set(feed_tags):
            continue
        if subscriber.feeds and scored.feed not in subscriber.feeds:
            continue
        if subscriber.include_keywords and not any(contains_phrase(text, k) for k in subscriber.include_keywords):
            continue
        if any(contains_phrase(text, k) for k in subscriber.exclude_keywords):
            continue
        if subscriber.countries:
            mentioned = countries_mentioned(text) if mentioned is None else mentioned
            if not mentioned & set(subscriber.countries):
                continue
        matched = tuple(
            label
            for label in subscriber.labels
            if scored.scores.probabilities.get(label, 0.0) >= subscriber.thresholds.get(label, model_thresholds[label])
        )
        if matched:
            alerts.append(Alert(subscriber=subscriber.name, matched_labels=matched))
    return alerts
