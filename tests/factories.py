"""Small builders for domain objects used across tests."""

from __future__ import annotations

from datetime import datetime, timezone

from alertd.domain import LABELS, Alert, Article, Item, ScoredItem, Scores
from alertd.store.database import NewAlert, PollOutcome


def scored_item(key: str = "guid:1", feed: str = "feed-a", sanctions: float = 0.9, arms: float = 0.8, lang: str = "en", title: str = "Title") -> ScoredItem:
    item = Item(key=key, title=title, link=f"https://news.example/{key}", summary="Summary text", published=datetime(2026, 1, 1, tzinfo=timezone.utc))
    probabilities = {"sanctions": sanctions, "arms_transfer": arms}
    scores = Scores(probabilities, {l: probabilities[l] >= 0.5 for l in LABELS}, {l: [("term", 0.5)] for l in LABELS}, "test-model")
    return ScoredItem(feed, item, Article(title, "Summary text", lang), scores)


def outcome_with(items: list[ScoredItem], subscribers=("sub-a",), feed: str = "feed-a", channel: str = "webhook") -> PollOutcome:
    return PollOutcome(
        feed, f"https://news.example/{feed}.xml", 200, None, '"etag-1"', None,
        [(s, [NewAlert(Alert(sub, ("sanctions",)), channel) for sub in subscribers]) for s in items],
    )


def simple_payload(alert_id, message_id, scored, alert, now):
    return {"alert_id": alert_id, "webhook_id": message_id, "title": scored.item.title}
